#!/usr/bin/env python3
"""Register one DNS-SD service with python-zeroconf (PyPI `zeroconf`, a real
mDNS responder, RFC 6762/6763) on --address, let it announce itself (mDNS
responses carry no question section, RFC 6762 §6), answer for --seconds,
then unregister (goodbye packets, TTL 0) and exit."""
import argparse
import socket
import time

from zeroconf import IPVersion, ServiceInfo, Zeroconf


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--address", required=True)
    ap.add_argument("--instance", required=True)
    ap.add_argument("--type", default="_ipp._tcp.local.")
    ap.add_argument("--host", required=True)
    ap.add_argument("--seconds", type=float, default=3)
    a = ap.parse_args()
    zc = Zeroconf(interfaces=[a.address], ip_version=IPVersion.V4Only)
    info = ServiceInfo(a.type, a.instance + "." + a.type, port=631,
                       addresses=[socket.inet_aton(a.address)], server=a.host,
                       properties={"note": "test"})
    zc.register_service(info)
    time.sleep(a.seconds)
    zc.unregister_service(info)
    zc.close()


if __name__ == "__main__":
    main()
