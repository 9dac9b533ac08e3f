#!/usr/bin/env python3
"""Opens TCP connections (and TLS ones, handshake completed) to HOST:PORT / HOST:TLS_PORT and holds
them idle, sending nothing. Source addresses rotate over 127.0.0.2..127.0.0.<1+IPS> (28k ephemeral
ports each). Prints "OPEN tcp=.. tls=.. failed=.." when done, then "STATUS open=.. closed_by_peer=.."
every 5 s; on SIGTERM prints the final STATUS and exits. Loopback only.
   holdconns.py HOST PORT N_TCP TLS_PORT N_TLS [IPS=4]"""
import asyncio, signal, ssl, sys, time

host, port, ntcp, tport, ntls = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
ips = int(sys.argv[6]) if len(sys.argv) > 6 else 4
assert host.startswith("127."), "loopback only"
state = {"open": 0, "closed": 0, "failed": 0, "errs": {}}

class Idle(asyncio.Protocol):
    def connection_made(self, t): state["open"] += 1
    def data_received(self, d): pass
    def connection_lost(self, e): state["open"] -= 1; state["closed"] += 1

async def one(i, tls, ctx):
    src = f"127.0.0.{2 + i % ips}"
    try:
        await asyncio.get_running_loop().create_connection(Idle, host, tport if tls else port, local_addr=(src, 0),
                                                          ssl=ctx if tls else None, server_hostname="pbx.test" if tls else None,
                                                          ssl_handshake_timeout=30 if tls else None)
    except Exception as e:
        state["failed"] += 1
        k = type(e).__name__ + ":" + str(e)[:60]; state["errs"][k] = state["errs"].get(k, 0) + 1

async def main():
    ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
    t0 = time.time()
    jobs = [(i, False) for i in range(ntcp)] + [(ntcp + i, True) for i in range(ntls)]
    for k in range(0, len(jobs), 100):
        await asyncio.gather(*(one(i, tls, ctx) for i, tls in jobs[k:k + 100]))
    print(f"OPEN tcp+tls={state['open']} (asked {ntcp} tcp + {ntls} tls) failed={state['failed']} in {time.time()-t0:.1f} s {dict(list(state['errs'].items())[:3])}", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    while not stop.is_set():
        print(f"STATUS open={state['open']} closed_by_peer={state['closed']}", flush=True)
        try: await asyncio.wait_for(stop.wait(), 5)
        except asyncio.TimeoutError: pass
    print(f"FINAL open={state['open']} closed_by_peer={state['closed']}", flush=True)

asyncio.run(main())
