"""`python -m harness.sut --config node.json`: run one reference node until killed."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import ssl
import sys
from pathlib import Path

from aiohttp import web

from harness.sut.ftp import start_ftp
from harness.sut.http import ServedLog, make_app
from harness.sut.node import Node
from harness.sut.services import SERVICES
from harness.sut.settings import NodeSettings
from harness.sut.smtp import start_smtp


def _access_log(settings: NodeSettings) -> dict[str, object]:
    """aiohttp's access-log arguments: none, or the served-answers log the benchmarks read."""
    if settings.access_log is None:
        return {"access_log": None}
    logger = logging.getLogger("harness.sut.served")
    logger.propagate = False
    logger.addHandler(logging.FileHandler(settings.access_log))
    logger.setLevel(logging.INFO)
    return {"access_log": logger, "access_log_class": ServedLog}


async def serve(settings: NodeSettings) -> None:
    node = Node(settings, frozenset(SERVICES))
    tasks = await node.start()
    runner = web.AppRunner(make_app(node), **_access_log(settings))
    await runner.setup()
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(settings.tls_cert, settings.tls_key)
    host = settings.host
    await web.TCPSite(runner, host, settings.http_port, reuse_address=True).start()
    await web.TCPSite(runner, host, settings.https_port, ssl_context=tls,
                      reuse_address=True).start()
    ftp = await start_ftp(node, host, settings.ftp_port)
    smtp = await start_smtp(node, host, settings.smtp_port)
    logging.info("node %s up on %s (http %d, https %d, ftp %d, smtp %d) mutants=%s",
                 node.id, host, settings.http_port, settings.https_port, settings.ftp_port,
                 settings.smtp_port, settings.mutants or "none")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for t in tasks:
        t.cancel()
    ftp.close()
    smtp.close()
    await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.sut",
                                     description="Run one node of the reference cluster.")
    parser.add_argument("--config", type=Path, required=True, help="node settings (JSON)")
    args = parser.parse_args(argv)
    if not args.config.is_file():
        print(f"node settings file {str(args.config)!r} does not exist", file=sys.stderr)
        return 2
    settings = NodeSettings.read(args.config)
    logging.basicConfig(level=logging.INFO,
                        format=f"%(asctime)s {settings.node_id} %(levelname)s %(message)s")
    # aiosmtpd logs every SMTP command at INFO: a soak would fill the disk a line at a time
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    asyncio.run(serve(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
