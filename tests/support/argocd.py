"""Argo CD's health checks for kadence, run as Argo CD runs them.

Argo CD runs a health check with gopher-lua (Lua 5.1) and, for a check set in argocd-cm,
without the Lua standard libraries: the base functions and the table library only, and
no string methods. `health` runs the scripts in deploy/argocd the same way (Lua 5.1
through lupa, in an environment with just those), so a script that leans on `string` or
`math` fails here as it would there. Shared by the unit and end-to-end tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import lupa.lua51  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parents[2]
ARGOCD = ROOT / "deploy" / "argocd"
GROUP = "kadence.dev"
SCRIPTS = {
    kind: ARGOCD / "resource_customizations" / GROUP / kind / "health.lua"
    for kind in ("Schedule", "Task")
}

# What gopher-lua's base library offers (lua.OpenBase), less what loads code or files.
_BASE = (
    "assert", "error", "getmetatable", "ipairs", "next", "pairs", "pcall", "print",
    "rawequal", "rawget", "rawset", "select", "setmetatable", "tonumber", "tostring",
    "type", "unpack", "xpcall", "_VERSION",
)  # fmt: skip
_RUNNER = """
function(source, name, obj, base)
  local env = {obj = obj, table = table}
  for _, key in ipairs(base) do env[key] = _G[key] end
  env._G = env
  local chunk, problem = loadstring(source, "@" .. name)
  if chunk == nil then error(problem) end
  setfenv(chunk, env)
  return chunk()
end
"""


@dataclass(frozen=True)
class Health:
    status: str
    message: str


class ArgoLua:
    """Lua 5.1 without its standard libraries, running a health check on one object."""

    def __init__(self) -> None:
        self.runtime = lupa.lua51.LuaRuntime(unpack_returned_tuples=False)
        # Strings lose their methods (`("x"):sub(1)`), as in Argo CD without the libraries.
        self.runtime.execute('debug.setmetatable("", nil)')
        self.run = self.runtime.eval(_RUNNER)
        self.base = self.to_lua(list(_BASE))

    def to_lua(self, value: Any) -> Any:
        """JSON as Argo CD hands it to Lua: objects and arrays (1-based) as tables, null as nil."""
        if isinstance(value, dict):
            table = self.runtime.table()
            for key, item in value.items():
                if item is not None:
                    table[key] = self.to_lua(item)
            return table
        if isinstance(value, list):
            table = self.runtime.table()
            for index, item in enumerate((i for i in value if i is not None), start=1):
                table[index] = self.to_lua(item)
            return table
        return value

    def health(self, script: Path, obj: dict[str, Any]) -> Health:
        hs = self.run(script.read_text(), script.name, self.to_lua(obj), self.base)
        assert hs is not None, f"{script} returned nothing"
        status, message = hs["status"], hs["message"]
        assert isinstance(status, str), f"{script} returned status {status!r}"
        assert message is None or isinstance(message, str), f"message {message!r}"
        return Health(status, message or "")


@cache
def lua() -> ArgoLua:
    return ArgoLua()


def health(obj: dict[str, Any]) -> Health:
    """The Argo CD health of a Schedule or Task, by the script for its kind."""
    assert obj["apiVersion"].split("/")[0] == GROUP
    return lua().health(SCRIPTS[obj["kind"]], obj)
