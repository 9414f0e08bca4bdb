#!/usr/bin/env python3
"""Servers (and two clients) that speak a protocol's clear-text preamble up to
its in-band TLS upgrade, then hand the socket to Python's ssl module (OpenSSL)
for a real TLS handshake. For making captures only.

server: --listen PROTO:PORT (repeatable) on --host, with --cert/--key, for
--lifetime seconds. PROTO is one of:
  smtp  RFC 3207   banner, EHLO -> 250-STARTTLS, STARTTLS -> 220
  lmtp  RFC 2033   as smtp with LHLO
  imap  RFC 3501   banner, CAPABILITY, STARTTLS (§6.2.1)
  pop3  RFC 2595   banner, STLS (§4)
  ftp   RFC 4217   banner, AUTH TLS -> 234 (§4)
  nntp  RFC 4642   banner, CAPABILITIES, STARTTLS -> 382
  xmpp  RFC 6120   stream header, <starttls/> feature, <proceed/> (§5.4)
  sieve RFC 5804   capability listing, STARTTLS -> OK
  irc   IRCv3 tls  STARTTLS -> 670
  postgres         SSLRequest (8 bytes) -> 'S' (PostgreSQL protocol docs, §55.2.10)
  mysql            Initial Handshake v10 with CLIENT_SSL, SSL Request packet
  ldap  RFC 4511   ExtendedRequest 1.3.6.1.4.1.1466.20037 (§4.14) -> success
  rdp   MS-RDPBCGR X.224 Connection Request with RDP_NEG_REQ -> Confirm with
                   RDP_NEG_RSP selecting PROTOCOL_SSL (§2.2.1.1, §2.2.1.2)
  tls   plain TLS from the first byte (TLS on any port)
The clients are `openssl s_client -starttls PROTO`; this server only has to
say what s_client waits for. After the handshake the server sends one line and
closes.

client rdp: X.224 Connection Request (MS-RDPBCGR §2.2.1.1) then TLS with SNI
--sni (no RDP client is installed here; the TLS is OpenSSL's).

client prefix: an SMTP client that sends --prefix-bytes of clear-text commands
(NOOP lines with a long argument, then EHLO) before STARTTLS and TLS with SNI
--sni: a ClientHello after a long non-TLS prefix.
Everything stops by itself (socket timeouts, --lifetime)."""
import argparse
import socket
import ssl
import struct
import threading
import time

TIMEOUT = 10


def read_line(f):
    return f.readline(4096)


def ber_len(n):
    if n < 0x80:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b


def ber(tag, body):
    return bytes([tag]) + ber_len(len(body)) + body


def read_ber(sock):
    """One BER TLV from the socket (LDAPMessage)."""
    head = recv_exact(sock, 2)
    n = head[1]
    extra = b""
    if n & 0x80:
        extra = recv_exact(sock, n & 0x7F)
        n = int.from_bytes(extra, "big")
    return head + extra + recv_exact(sock, n)


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("short read")
        buf += chunk
    return buf


def preamble(proto, sock):
    """Speak the server side of PROTO's clear-text part, up to the upgrade."""
    f = sock.makefile("rb")
    w = sock.sendall
    if proto in ("smtp", "lmtp"):
        w(b"220 mail.example.org ESMTP ready\r\n")
        while True:  # NOOPs (the prefix client), EHLO/LHLO, then STARTTLS
            line = read_line(f)
            if not line:
                raise ConnectionError("eof")
            verb = line[:8].upper()
            if verb.startswith(b"STARTTLS"):
                w(b"220 2.0.0 Ready to start TLS\r\n")
                break
            if verb[:4] in (b"EHLO", b"LHLO", b"HELO"):
                w(b"250-mail.example.org\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n"
                  b"250-STARTTLS\r\n250 8BITMIME\r\n")
            else:
                w(b"250 2.0.0 OK\r\n")
    elif proto == "imap":
        w(b"* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] ready\r\n")
        while True:
            line = read_line(f)
            if not line:
                raise ConnectionError("eof")
            tag, _, cmd = line.strip().partition(b" ")
            if cmd.upper().startswith(b"CAPABILITY"):
                w(b"* CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED\r\n" + tag + b" OK done\r\n")
            elif cmd.upper().startswith(b"STARTTLS"):
                w(tag + b" OK Begin TLS negotiation now\r\n")
                break
            else:
                w(tag + b" BAD\r\n")
    elif proto == "pop3":
        w(b"+OK POP3 ready\r\n")
        read_line(f)  # STLS (s_client sends it straight away)
        w(b"+OK Begin TLS negotiation\r\n")
    elif proto == "ftp":
        w(b"220 FTP ready\r\n")
        read_line(f)  # AUTH TLS
        w(b"234 AUTH TLS successful\r\n")
    elif proto == "nntp":
        w(b"200 news.example.org ready\r\n")
        read_line(f)  # CAPABILITIES
        w(b"101 Capability list:\r\nVERSION 2\r\nREADER\r\nSTARTTLS\r\n.\r\n")
        read_line(f)  # STARTTLS
        w(b"382 Continue with TLS negotiation\r\n")
    elif proto == "sieve":
        w(b'"IMPLEMENTATION" "starttls.py"\r\n"SIEVE" "fileinto"\r\n"STARTTLS"\r\n'
          b'"VERSION" "1.0"\r\nOK "ready"\r\n')
        read_line(f)  # STARTTLS
        w(b'OK "Begin TLS negotiation now"\r\n')
    elif proto == "irc":
        read_line(f)  # STARTTLS
        w(b":irc.example.org 670 * :STARTTLS successful, go ahead with TLS handshake\r\n")
    elif proto == "xmpp":
        got = b""
        while b">" not in got:  # the client's <stream:stream ...> open tag
            chunk = sock.recv(4096)
            if not chunk:
                raise ConnectionError("eof")
            got += chunk
        w(b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
          b"xmlns:stream='http://etherx.jabber.org/streams' id='k1' from='example.org' "
          b"version='1.0'><stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'>"
          b"<required/></starttls></stream:features>")
        got = b""
        while b"/>" not in got:  # <starttls xmlns=.../>
            chunk = sock.recv(4096)
            if not chunk:
                raise ConnectionError("eof")
            got += chunk
        w(b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    elif proto == "postgres":
        req = recv_exact(sock, 8)
        if req != struct.pack("!II", 8, 80877103):
            raise ConnectionError("not an SSLRequest")
        w(b"S")
    elif proto == "mysql":
        caps = 0x0000F7FF | 0x0800  # CLIENT_SSL (0x0800) among the usual flags
        body = (b"\x0a" + b"8.0.36-starttls\x00" + struct.pack("<I", 7) + b"abcdefgh\x00"
                + struct.pack("<H", caps & 0xFFFF) + b"\x21" + struct.pack("<H", 2)
                + struct.pack("<H", caps >> 16) + b"\x15" + b"\x00" * 10
                + b"ijklmnopqrst\x00" + b"mysql_native_password\x00")
        w(struct.pack("<I", len(body))[:3] + b"\x00" + body)
        head = recv_exact(sock, 4)  # SSL Request: 32-byte payload, sequence 1
        recv_exact(sock, int.from_bytes(head[:3], "little"))
    elif proto == "ldap":
        msg = read_ber(sock)  # LDAPMessage with ExtendedRequest (application 23)
        # LDAPMessage ::= SEQUENCE { messageID INTEGER, ... }: copy the messageID TLV.
        body = msg[2 + (msg[1] & 0x7F):] if msg[1] & 0x80 else msg[2:]
        mid = body[:2 + body[1]]
        resp = ber(0x78, b"\x0a\x01\x00" + b"\x04\x00" + b"\x04\x00"
                   + ber(0x8A, b"1.3.6.1.4.1.1466.20037"))
        w(ber(0x30, mid + resp))
    elif proto == "rdp":
        head = recv_exact(sock, 4)  # TPKT (RFC 1006): version 3, reserved, length
        recv_exact(sock, struct.unpack("!H", head[2:4])[0] - 4)
        neg = struct.pack("<BBHI", 0x02, 0x00, 8, 0x00000001)  # RDP_NEG_RSP: PROTOCOL_SSL
        x224 = bytes([6 + len(neg), 0xD0, 0, 0, 0x12, 0x34, 0]) + neg
        w(struct.pack("!BBH", 3, 0, 4 + len(x224)) + x224)
    elif proto == "tls":
        pass
    else:
        raise ValueError(proto)


def serve_one(proto, conn, ctx):
    conn.settimeout(TIMEOUT)
    try:
        preamble(proto, conn)
        with ctx.wrap_socket(conn, server_side=True) as t:
            t.sendall(b"hello over TLS\r\n")
            time.sleep(0.2)
    except (OSError, ConnectionError, ssl.SSLError):
        pass
    finally:
        conn.close()


def listener(host, proto, port, ctx, stop):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, port))
    s.listen(8)
    s.settimeout(0.5)
    while time.time() < stop:
        try:
            conn, _ = s.accept()
        except socket.timeout:
            continue
        threading.Thread(target=serve_one, args=(proto, conn, ctx), daemon=True).start()
    s.close()


def run_server(a):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(a.cert, a.key)
    stop = time.time() + a.lifetime
    threads = []
    for spec in a.listen:
        proto, port = spec.split(":")
        t = threading.Thread(target=listener, args=(a.host, proto, int(port), ctx, stop), daemon=True)
        t.start()
        threads.append(t)
    for t in threads:
        t.join(a.lifetime + 2)


def client_tls(sock, sni):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with ctx.wrap_socket(sock, server_hostname=sni) as t:
        t.recv(100)


def run_client(a):
    sock = socket.create_connection((a.host, a.port), timeout=TIMEOUT)
    if a.mode == "rdp":
        cookie = b"Cookie: mstshash=user\r\n"
        neg = struct.pack("<BBHI", 0x01, 0x00, 8, 0x00000001)  # RDP_NEG_REQ: PROTOCOL_SSL
        x224 = bytes([6 + len(cookie) + len(neg), 0xE0, 0, 0, 0, 0, 0]) + cookie + neg
        sock.sendall(struct.pack("!BBH", 3, 0, 4 + len(x224)) + x224)
        recv_exact(sock, 19)  # TPKT + X.224 Connection Confirm + RDP_NEG_RSP
    elif a.mode == "prefix":
        f = sock.makefile("rb")
        read_line(f)  # banner
        sent = 0
        while sent < a.prefix_bytes:
            line = b"NOOP " + b"x" * 200 + b"\r\n"
            sock.sendall(line)
            sent += len(line)
            read_line(f)
        sock.sendall(b"EHLO client.example.org\r\n")
        while not read_line(f).startswith(b"250 "):
            pass
        sock.sendall(b"STARTTLS\r\n")
        read_line(f)
    client_tls(sock, a.sni)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["server", "rdp", "prefix"])
    ap.add_argument("--host", required=True)
    ap.add_argument("--port", type=int)
    ap.add_argument("--listen", action="append", default=[])
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--sni")
    ap.add_argument("--prefix-bytes", type=int, default=2048)
    ap.add_argument("--lifetime", type=float, default=60)
    a = ap.parse_args()
    if a.mode == "server":
        run_server(a)
    else:
        run_client(a)


if __name__ == "__main__":
    main()
