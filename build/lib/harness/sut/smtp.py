"""SMTP: a message to a service address invokes the service on this node, or is refused.

The greeting names the node (`220 node1 harness ESMTP`). A node that cannot serve answers 451
to RCPT; it never relays the message to a peer.
"""

from __future__ import annotations

import asyncio
import email
import hashlib

from aiosmtpd.smtp import SMTP, Envelope, Session

from harness.sut.node import Node, Refused, StoreUnavailable


class DeliveryHandler:
    def __init__(self, node: Node) -> None:
        self.node = node

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        if not self.node.can_serve("HarnessDemo"):
            return f"451 4.3.0 {self.node.id} cannot accept mail now"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        payload = envelope.original_content or b""
        message = email.message_from_bytes(payload)
        key = message.get("Message-ID") or hashlib.sha256(payload).hexdigest()
        try:
            entry = await self.node.accept_delivery("mail", key.strip("<>"), "smtp", payload)
        except Refused:
            return f"451 4.3.0 {self.node.id} cannot accept mail now"
        except StoreUnavailable:
            return "451 4.3.0 audit trail unavailable"
        return f"250 OK delivered on {entry['node']}"


async def start_smtp(node: Node, host: str, port: int) -> asyncio.AbstractServer:
    loop = asyncio.get_running_loop()
    handler = DeliveryHandler(node)
    return await loop.create_server(
        lambda: SMTP(handler, hostname=node.id, ident="harness ESMTP", decode_data=False),
        host, port)
