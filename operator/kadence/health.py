"""The probes: `/healthz` (alive: restart me if not) and `/readyz` (ready to act or to take
over, and who leads), served on one port for the kubelet and for people.

kopf's own liveness endpoint serves one path only; this one also tells a standby from a
leader, which a person checking a takeover wants to see.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web


def application(
    alive: Callable[[], None], readiness: Callable[[], dict[str, object]]
) -> web.Application:
    """`alive` raises when the process should be restarted; `readiness()["ready"]` says
    whether it has listed everything and can act (as leader or on takeover)."""

    async def healthz(_: web.Request) -> web.Response:
        try:
            alive()
        except Exception as error:  # any failure is a failed probe, with its reason
            return web.Response(status=500, text=f"{error}\n")
        return web.Response(text="ok\n")

    async def readyz(_: web.Request) -> web.Response:
        state = readiness()
        return web.json_response(state, status=200 if state.get("ready") else 503)

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app


async def serve(app: web.Application, port: int) -> web.AppRunner:
    """Listen on every interface at `port`; the caller cleans the runner up."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "0.0.0.0", port).start()  # the kubelet probes from outside
    return runner
