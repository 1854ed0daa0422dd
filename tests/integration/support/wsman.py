"""A WS-Management (WinRM) peer on a free loopback port, for the WinRM runner tests.

It speaks as much of WinRM's SOAP protocol as pywinrm uses: Create (a shell), Command, Receive,
Signal and Delete, over HTTP or HTTPS (a throwaway self-signed certificate), with Basic
authentication (wrong credentials get 401). It runs nothing: every command gets the
:class:`Reply` that the test's ``responder`` returns for it, and the peer records everything it
was asked (shells with their environment, working directory and code page; command lines, with
the PowerShell of ``powershell -encodedcommand`` decoded; signals; deleted shells), so a test can
compare what the runner sent with what StackStorm sends.

A Receive waits, as a Windows host does, until there is output, the command ends, or the
request's OperationTimeout (capped by ``receive_wait``) passes; then it answers with the
"operation timed out" fault that tells the client to ask again. A command whose reply never
ends keeps running until it is signalled to terminate or its shell is deleted.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import re
import ssl
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

SOAP = "http://www.w3.org/2003/05/soap-envelope"
ADDRESSING = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
WSMAN = "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"
SHELL = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
TRANSFER = "http://schemas.xmlsoap.org/ws/2004/09/transfer"
FAULT = "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault"
TERMINATE = f"{SHELL}/signal/terminate"
OPERATION_TIMED_OUT = 2150858793

USERNAME, PASSWORD = "Administrator", "W1nRM-s3cret-pa55"


@dataclass(frozen=True)
class Reply:
    """What a command does: its output, exit code and how long it takes.

    With ``lines_every``, stdout comes one line at a time, that many seconds apart, and the
    command ends after the last line; ``never_ends`` keeps it running after its output.
    """

    stdout: bytes = b""
    stderr: bytes = b""
    exit_code: int = 0
    lines_every: float = 0.0
    never_ends: bool = False

    def chunks(self) -> list[tuple[float, str, bytes]]:
        """The output as ``(seconds after start, stream, data)``, in order."""
        timed: list[tuple[float, str, bytes]] = []
        if self.stderr:
            timed.append((0.0, "stderr", self.stderr))
        if self.lines_every:
            for index, line in enumerate(self.stdout.splitlines(keepends=True)):
                timed.append((index * self.lines_every, "stdout", line))
        elif self.stdout:
            timed.append((0.0, "stdout", self.stdout))
        return sorted(timed, key=lambda chunk: chunk[0])

    def duration(self) -> float:
        return len(self.stdout.splitlines()) * self.lines_every if self.lines_every else 0.0


@dataclass
class Command:
    """One command the peer was asked to run, and what became of it."""

    id: str
    shell_id: str
    command_line: str
    arguments: str | None
    reply: Reply
    started: float = field(default_factory=time.monotonic)
    sent: int = 0
    signals: list[str] = field(default_factory=list)
    receives: int = 0

    @property
    def script(self) -> str | None:
        """The PowerShell of a ``powershell -encodedcommand`` line, decoded; else None."""
        match = re.fullmatch(r"powershell -encodedcommand ([A-Za-z0-9+/=]+)", self.command_line)
        return base64.b64decode(match.group(1)).decode("utf-16-le") if match else None

    @property
    def terminated(self) -> bool:
        return TERMINATE in self.signals


@dataclass
class Shell:
    """One remote shell, as created."""

    id: str
    environment: dict[str, str]
    working_directory: str | None
    options: dict[str, str]
    commands: list[Command] = field(default_factory=list)
    deleted: bool = False


def _default_responder(command: Command) -> Reply:
    return Reply()


@dataclass
class WsManPeer:
    """The peer's state: what it was asked, and how it answers."""

    port: int = 0
    scheme: str = "http"
    username: str = USERNAME
    password: str = PASSWORD
    responder: Callable[[Command], Reply] = _default_responder
    receive_wait: float = 30.0
    shells: dict[str, Shell] = field(default_factory=dict)
    actions: list[str] = field(default_factory=list)
    refused_logins: int = 0
    changed: threading.Condition = field(default_factory=threading.Condition)

    def commands(self) -> list[Command]:
        with self.changed:
            return [command for shell in self.shells.values() for command in shell.commands]

    def last_command(self) -> Command:
        commands = self.commands()
        assert commands, "the peer was asked to run nothing"
        return commands[-1]

    def shell_of(self, command: Command) -> Shell:
        return self.shells[command.shell_id]

    def reset(self, responder: Callable[[Command], Reply] = _default_responder) -> None:
        with self.changed:
            self.shells.clear()
            self.actions.clear()
            self.refused_logins = 0
            self.responder = responder
            self.receive_wait = 30.0

    def wait_for(self, check: Callable[[], bool], what: str, seconds: float = 15.0) -> None:
        deadline = time.monotonic() + seconds
        with self.changed:
            while not check():
                remaining = deadline - time.monotonic()
                assert remaining > 0, f"the peer never saw {what}"
                self.changed.wait(remaining)


def _text(element: ET.Element | None) -> str:
    return (element.text or "") if element is not None else ""


def _seconds(duration: str) -> float:
    match = re.fullmatch(r"PT([0-9.]+)S", duration.strip())
    return float(match.group(1)) if match else 60.0


def _envelope(action: str, relates_to: str, body: str) -> bytes:
    return (
        f'<s:Envelope xmlns:s="{SOAP}" xmlns:a="{ADDRESSING}" xmlns:w="{WSMAN}" '
        f'xmlns:rsp="{SHELL}" xmlns:x="{TRANSFER}">'
        f"<s:Header><a:Action>{action}</a:Action>"
        f"<a:MessageID>uuid:{uuid.uuid4()}</a:MessageID>"
        f"<a:RelatesTo>{escape(relates_to)}</a:RelatesTo></s:Header>"
        f"<s:Body>{body}</s:Body></s:Envelope>"
    ).encode()


def _fault(relates_to: str, code: int, reason: str) -> bytes:
    return (
        f'<s:Envelope xmlns:s="{SOAP}" xmlns:a="{ADDRESSING}" xmlns:f="{FAULT}">'
        f"<s:Header><a:Action>{ADDRESSING}/fault</a:Action>"
        f"<a:RelatesTo>{escape(relates_to)}</a:RelatesTo></s:Header>"
        "<s:Body><s:Fault><s:Code><s:Value>s:Receiver</s:Value></s:Code>"
        f'<s:Reason><s:Text xml:lang="en-US">{escape(reason)}</s:Text></s:Reason>'
        f'<s:Detail><f:WSManFault Code="{code}" Machine="peer">'
        f"<f:Message>{escape(reason)}</f:Message></f:WSManFault></s:Detail>"
        "</s:Fault></s:Body></s:Envelope>"
    ).encode()


class _Handler(BaseHTTPRequestHandler):
    server: _PeerServer

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_POST(self) -> None:
        peer = self.server.peer
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        expected = base64.b64encode(f"{peer.username}:{peer.password}".encode()).decode()
        if self.headers.get("Authorization") != f"Basic {expected}":
            with peer.changed:
                peer.refused_logins += 1
            self._send(401, b"", {"WWW-Authenticate": 'Basic realm="WSMAN"'})
            return
        if self.path != "/wsman":
            self._send(404, b"")
            return
        root = ET.fromstring(body)
        header = root.find(f"{{{SOAP}}}Header")
        action = _text(header.find(f"{{{ADDRESSING}}}Action") if header is not None else None)
        message_id = _text(
            header.find(f"{{{ADDRESSING}}}MessageID") if header is not None else None
        )
        with peer.changed:
            peer.actions.append(action.rsplit("/", 1)[-1])
            peer.changed.notify_all()
        handlers = {
            f"{TRANSFER}/Create": self._create,
            f"{SHELL}/Command": self._command,
            f"{SHELL}/Receive": self._receive,
            f"{SHELL}/Signal": self._signal,
            f"{TRANSFER}/Delete": self._delete,
        }
        handler = handlers.get(action)
        if handler is None:
            self._send(500, _fault(message_id, 2150858843, f"unknown action {action}"))
            return
        status, answer = handler(root, message_id)
        self._send(status, answer)

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/soap+xml;charset=UTF-8")
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass  # the client hung up (an interrupted request)

    def _shell(self, root: ET.Element) -> Shell | None:
        selector = root.find(f".//{{{WSMAN}}}Selector[@Name='ShellId']")
        shell = self.server.peer.shells.get(_text(selector))
        return shell if shell is not None and not shell.deleted else None

    def _create(self, root: ET.Element, message_id: str) -> tuple[int, bytes]:
        peer = self.server.peer
        body = root.find(f".//{{{SHELL}}}Shell")
        assert body is not None
        environment = {
            variable.get("Name", ""): _text(variable)
            for variable in body.iter(f"{{{SHELL}}}Variable")
        }
        options = {
            option.get("Name", ""): _text(option) for option in root.iter(f"{{{WSMAN}}}Option")
        }
        directory = body.find(f"{{{SHELL}}}WorkingDirectory")
        shell = Shell(
            id=str(uuid.uuid4()).upper(),
            environment=environment,
            working_directory=_text(directory) if directory is not None else None,
            options=options,
        )
        with peer.changed:
            peer.shells[shell.id] = shell
        created = (
            f"<x:ResourceCreated><a:Address>http://peer/wsman</a:Address><a:ReferenceParameters>"
            f"<w:ResourceURI>{SHELL}/cmd</w:ResourceURI><w:SelectorSet>"
            f'<w:Selector Name="ShellId">{shell.id}</w:Selector>'
            f"</w:SelectorSet></a:ReferenceParameters></x:ResourceCreated>"
        )
        return 200, _envelope(f"{TRANSFER}/CreateResponse", message_id, created)

    def _command(self, root: ET.Element, message_id: str) -> tuple[int, bytes]:
        peer = self.server.peer
        shell = self._shell(root)
        if shell is None:
            return 500, _fault(message_id, 2150858843, "The shell was not found.")
        line = root.find(f".//{{{SHELL}}}CommandLine")
        assert line is not None
        arguments = line.find(f"{{{SHELL}}}Arguments")
        command = Command(
            id=str(uuid.uuid4()).upper(),
            shell_id=shell.id,
            command_line=_text(line.find(f"{{{SHELL}}}Command")),
            arguments=_text(arguments) if arguments is not None else None,
            reply=Reply(),
        )
        reply = peer.responder(command)
        with peer.changed:
            command.reply = reply
            command.started = time.monotonic()
            shell.commands.append(command)
            peer.changed.notify_all()
        answer = (
            f"<rsp:CommandResponse><rsp:CommandId>{command.id}</rsp:CommandId>"
            "</rsp:CommandResponse>"
        )
        return 200, _envelope(f"{SHELL}/CommandResponse", message_id, answer)

    def _receive(self, root: ET.Element, message_id: str) -> tuple[int, bytes]:
        peer = self.server.peer
        shell = self._shell(root)
        stream = root.find(f".//{{{SHELL}}}DesiredStream")
        command_id = stream.get("CommandId") if stream is not None else None
        command = next((c for c in (shell.commands if shell else []) if c.id == command_id), None)
        if command is None:
            return 500, _fault(message_id, 2150858843, "The command was not found.")
        timeout = _text(root.find(f".//{{{WSMAN}}}OperationTimeout"))
        deadline = time.monotonic() + min(_seconds(timeout), peer.receive_wait)
        with peer.changed:
            command.receives += 1
            while True:
                now = time.monotonic() - command.started
                chunks = command.reply.chunks()
                due = [chunk for chunk in chunks[command.sent :] if chunk[0] <= now]
                done = command.terminated or (
                    not command.reply.never_ends
                    and command.sent + len(due) == len(chunks)
                    and now >= command.reply.duration()
                )
                if due or done:
                    command.sent += len(due)
                    peer.changed.notify_all()
                    return 200, self._output(command, due, done, message_id)
                if time.monotonic() >= deadline:
                    return 500, _fault(message_id, OPERATION_TIMED_OUT, "The operation timed out.")
                pending = [chunk[0] - now for chunk in chunks[command.sent :]]
                peer.changed.wait(min([deadline - time.monotonic(), 0.05, *pending]))

    @staticmethod
    def _output(
        command: Command, due: list[tuple[float, str, bytes]], done: bool, message_id: str
    ) -> bytes:
        streams = "".join(
            f'<rsp:Stream Name="{name}" CommandId="{command.id}">'
            f"{base64.b64encode(data).decode()}</rsp:Stream>"
            for _, name, data in due
        )
        if done:
            exit_code = -1 if command.terminated else command.reply.exit_code
            state = (
                f'<rsp:CommandState CommandId="{command.id}" State="{SHELL}/CommandState/Done">'
                f"<rsp:ExitCode>{exit_code}</rsp:ExitCode></rsp:CommandState>"
            )
        else:
            state = (
                f'<rsp:CommandState CommandId="{command.id}" State="{SHELL}/CommandState/Running"/>'
            )
        answer = f"<rsp:ReceiveResponse>{streams}{state}</rsp:ReceiveResponse>"
        return _envelope(f"{SHELL}/ReceiveResponse", message_id, answer)

    def _signal(self, root: ET.Element, message_id: str) -> tuple[int, bytes]:
        peer = self.server.peer
        shell = self._shell(root)
        signal = root.find(f".//{{{SHELL}}}Signal")
        command_id = signal.get("CommandId") if signal is not None else None
        command = next((c for c in (shell.commands if shell else []) if c.id == command_id), None)
        if command is None:
            return 500, _fault(message_id, 2150858843, "The command was not found.")
        with peer.changed:
            command.signals.append(_text(root.find(f".//{{{SHELL}}}Code")))
            peer.changed.notify_all()
        return 200, _envelope(f"{SHELL}/SignalResponse", message_id, "<rsp:SignalResponse/>")

    def _delete(self, root: ET.Element, message_id: str) -> tuple[int, bytes]:
        peer = self.server.peer
        shell = self._shell(root)
        if shell is None:
            return 500, _fault(message_id, 2150858843, "The shell was not found.")
        with peer.changed:
            shell.deleted = True
            for command in shell.commands:
                if not command.terminated:
                    command.signals.append("deleted")
            peer.changed.notify_all()
        return 200, _envelope(f"{TRANSFER}/DeleteResponse", message_id, "")


class _PeerServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, peer: WsManPeer) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.peer = peer


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "peer.crt", directory / "peer.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@contextmanager
def running_wsman(directory: Path | None = None, *, tls: bool = False) -> Iterator[WsManPeer]:
    """Serve a :class:`WsManPeer` on 127.0.0.1 (HTTPS with ``tls``, which needs ``directory``)."""
    peer = WsManPeer(scheme="https" if tls else "http")
    server = _PeerServer(peer)
    if tls:
        assert directory is not None, "a TLS peer keeps its certificate in a directory"
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*_self_signed(directory))
        server.socket = context.wrap_socket(server.socket, server_side=True)
    peer.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield peer
    finally:
        server.shutdown()
        server.server_close()


def connection_parameters(peer: WsManPeer, **extra: Any) -> dict[str, Any]:
    """Runner parameters that reach ``peer`` with its credentials and Basic authentication."""
    return {
        "host": "127.0.0.1",
        "port": peer.port,
        "scheme": peer.scheme,
        "transport": "basic",
        "username": peer.username,
        "password": peer.password,
        "verify_ssl_cert": False,
        **extra,
    }
