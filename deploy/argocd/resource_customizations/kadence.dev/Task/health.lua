-- Argo CD health of a kadence.dev Task: its phase, once the operator has seen its spec.
-- As a sync hook, Healthy counts as succeeded and Degraded as failed.
-- It needs only Lua's base functions and the table library (argocd-cm's default).
local hs = {}

local generation = tonumber(obj.metadata.generation)
local status = obj.status
local observed = nil
if status ~= nil then
  observed = tonumber(status.observedGeneration)
end
if observed == nil or (generation ~= nil and observed < generation) then
  hs.status = "Progressing"
  if generation ~= nil then
    hs.message = "waiting for the operator to observe generation " .. generation
  else
    hs.message = "waiting for the operator"
  end
  return hs
end

local phase = status.phase
if phase == nil or phase == "" then
  phase = "Pending"
end
hs.message = phase
if status.message ~= nil and status.message ~= "" then
  hs.message = phase .. ": " .. status.message
end

if phase == "Completed" then
  hs.status = "Healthy"
elseif phase == "Failed" or phase == "Cancelled" then
  hs.status = "Degraded"
else
  -- Pending, Queued, Dispatched, Running: on its way.
  hs.status = "Progressing"
end
return hs
