"""FTP: uploads into the inbox invoke a service on this node, or fail; never handed on.

Just the part of RFC 959 that clients use to log in and upload (USER, PASS, TYPE, PASV/EPSV,
STOR, LIST/NLST, PWD, CWD, NOOP, QUIT). The greeting names the node (`220 node1 ...`). A node
that cannot serve answers 451 to STOR. Data connections go straight to the node's own address.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from harness.sut.node import Node, Refused, StoreUnavailable

log = logging.getLogger("harness.sut.ftp")
MAX_UPLOAD = 16 * 1024 * 1024


class FtpConnection:
    def __init__(self, node: Node, host: str, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self.node, self.host, self.reader, self.writer = node, host, reader, writer
        self.passive: asyncio.AbstractServer | None = None
        self.data: asyncio.Future[tuple[asyncio.StreamReader, asyncio.StreamWriter]] | None = None
        self.files: list[str] = []

    async def reply(self, line: str) -> None:
        self.writer.write(line.encode() + b"\r\n")
        await self.writer.drain()

    async def run(self) -> None:
        await self.reply(f"220 {self.node.id} harness FTP ready")
        while line := await self.reader.readline():
            verb, _, arg = line.decode(errors="replace").strip().partition(" ")
            handler = getattr(self, f"cmd_{verb.upper()}", None)
            if handler is None:
                await self.reply(f"502 {verb} not implemented")
                continue
            if await handler(arg) is False:
                break

    async def cmd_USER(self, arg: str) -> None:
        await self.reply("331 password please")

    async def cmd_PASS(self, arg: str) -> None:
        await self.reply("230 logged in")

    async def cmd_SYST(self, arg: str) -> None:
        await self.reply("215 UNIX Type: L8")

    async def cmd_PWD(self, arg: str) -> None:
        await self.reply('257 "/inbox"')

    async def cmd_CWD(self, arg: str) -> None:
        await self.reply("250 ok")

    async def cmd_TYPE(self, arg: str) -> None:
        await self.reply(f"200 type {arg}")

    async def cmd_NOOP(self, arg: str) -> None:
        await self.reply("200 ok")

    async def cmd_QUIT(self, arg: str) -> bool:
        await self.reply("221 bye")
        return False

    async def _open_passive(self) -> int:
        await self._close_passive()
        loop = asyncio.get_running_loop()
        self.data = loop.create_future()

        def accepted(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            if self.data and not self.data.done():
                self.data.set_result((r, w))
            else:
                w.close()

        self.passive = await asyncio.start_server(accepted, self.host, 0)
        return self.passive.sockets[0].getsockname()[1]

    async def _close_passive(self) -> None:
        if self.passive:
            self.passive.close()
            self.passive = None

    async def cmd_PASV(self, arg: str) -> None:
        port = await self._open_passive()
        h = self.host.replace(".", ",")
        await self.reply(f"227 Entering Passive Mode ({h},{port >> 8},{port & 0xFF})")

    async def cmd_EPSV(self, arg: str) -> None:
        port = await self._open_passive()
        await self.reply(f"229 Entering Extended Passive Mode (|||{port}|)")

    async def _data_connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        if self.data is None:
            await self.reply("425 use PASV or EPSV first")
            return None
        try:
            return await asyncio.wait_for(self.data, timeout=5)
        except asyncio.TimeoutError:
            await self.reply("425 no data connection")
            return None
        finally:
            self.data = None
            await self._close_passive()

    async def cmd_STOR(self, name: str) -> None:
        if not self.node.can_serve("HarnessDemo"):
            await self.reply(f"451 {self.node.id} cannot accept uploads now")
            return
        await self.reply("150 send the file")
        conn = await self._data_connection()
        if conn is None:
            return
        reader, writer = conn
        payload = await reader.read(MAX_UPLOAD)
        writer.close()
        try:
            entry = await self.node.accept_delivery("upload", name, "ftp", payload)
        except Refused:
            await self.reply(f"451 {self.node.id} cannot accept uploads now")
            return
        except StoreUnavailable:
            await self.reply("451 audit trail unavailable")
            return
        self.files.append(name)
        await self.reply(f"226 stored on {entry['node']} sha256={entry['sha256']}")

    async def _send_listing(self, lines: list[str]) -> None:
        await self.reply("150 listing")
        conn = await self._data_connection()
        if conn is None:
            return
        _, writer = conn
        writer.write("".join(f"{line}\r\n" for line in lines).encode())
        await writer.drain()
        writer.close()
        await self.reply("226 done")

    async def cmd_NLST(self, arg: str) -> None:
        await self._send_listing(self.files)

    async def cmd_LIST(self, arg: str) -> None:
        await self._send_listing(self.files)

    async def close(self) -> None:
        await self._close_passive()
        with contextlib.suppress(Exception):
            self.writer.close()


async def start_ftp(node: Node, host: str, port: int) -> asyncio.AbstractServer:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = FtpConnection(node, host, reader, writer)
        try:
            await session.run()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            await session.close()

    return await asyncio.start_server(serve, host, port)
