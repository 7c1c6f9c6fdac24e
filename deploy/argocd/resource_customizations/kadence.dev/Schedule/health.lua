-- Argo CD health of a kadence.dev Schedule.
-- The status follows kstatus: Ready, with Stalled and Reconciling present only while True;
-- status.observedGeneration and each condition's observedGeneration say which spec it is about.
-- It needs only Lua's base functions and the table library (argocd-cm's default).
local hs = {}

local generation = tonumber(obj.metadata.generation)

local function waiting()
  hs.status = "Progressing"
  if generation ~= nil then
    hs.message = "waiting for the operator to observe generation " .. generation
  else
    hs.message = "waiting for the operator"
  end
  return hs
end

local function text(condition)
  if condition.message ~= nil and condition.message ~= "" then
    return condition.message
  end
  if condition.reason ~= nil and condition.reason ~= "" then
    return condition.reason
  end
  return condition.type
end

local function answer(status, message)
  hs.status = status
  hs.message = message
  return hs
end

local status = obj.status
if status == nil then
  return waiting()
end
local observed = tonumber(status.observedGeneration)
if observed == nil or (generation ~= nil and observed < generation) then
  return waiting()
end

-- The conditions about the current spec, by type; one about an older generation is not
-- an answer yet.
local conditions = {}
local stale = false
if status.conditions ~= nil then
  for _, condition in ipairs(status.conditions) do
    local seen = tonumber(condition.observedGeneration)
    if generation ~= nil and seen ~= nil and seen < generation then
      stale = true
    elseif condition.type ~= nil then
      conditions[condition.type] = condition
    end
  end
end

local ready = conditions["Ready"]
local stalled = conditions["Stalled"]
local reconciling = conditions["Reconciling"]
local healthy = conditions["Healthy"]

if stalled ~= nil and stalled.status == "True" then
  return answer("Degraded", text(stalled))
end
if ready ~= nil and ready.status == "False" then
  if ready.reason == "Disabled" then
    return answer("Suspended", text(ready))
  end
  if ready.reason == "Ended" or ready.reason == "RunLimitReached" then
    return answer("Healthy", text(ready))
  end
  return answer("Degraded", text(ready))
end
if reconciling ~= nil and reconciling.status == "True" then
  return answer("Progressing", text(reconciling))
end
if healthy ~= nil and healthy.status == "False" then
  return answer("Degraded", text(healthy))
end
if ready ~= nil and ready.status == "True" then
  local message = text(ready)
  if status.deadlineAt ~= nil and status.deadlineAt ~= "" then
    message = "next deadline " .. status.deadlineAt
  elseif status.active ~= nil and status.active[1] ~= nil then
    message = "next deadline after task " .. status.active[1] .. " finishes"
  end
  if healthy ~= nil and healthy.status == "True" then
    message = message .. "; " .. text(healthy)
  end
  return answer("Healthy", message)
end
if ready ~= nil then
  return answer("Progressing", text(ready))
end
if stale then
  return waiting()
end
return answer("Progressing", "waiting for the operator to set Ready")
