# DNS data shared by the DNS captures (sourced). Only namespace addresses.
# Kaspersky names from shared/research/kaspersky-endpoints.md, decoys that
# must NOT match, ordinary names, and CNAME chains (dnsmasq --cname needs a
# locally known target, so targets are --host-record entries).
DNS_ZONE=(
    --host-record=ds.kaspersky.com,10.77.1.1,fd77:1::1
    --host-record=dnl-01.geo.kaspersky.com,10.77.1.2,fd77:1::2
    --host-record=s01.upd.kaspersky.com,10.77.1.3,fd77:1::3
    --host-record=dc1.ksn.kaspersky-labs.com,10.77.1.4,fd77:1::4
    --host-record=ksn-file-geo.kaspersky-labs.com,10.77.1.5,fd77:1::5
    --host-record=gc.kis.v2.scr.kaspersky-labs.com,10.77.1.6,fd77:1::6
    --host-record=dnl-03.geo.kaspersky.com,10.77.1.7,fd77:1::7
    --host-record=kav-act.edge.example.net,10.77.1.8,fd77:1::8
    --host-record=notkaspersky.com,10.77.2.1,fd77:2::1
    --host-record=kaspersky.com.attacker.example,10.77.2.2,fd77:2::2
    --host-record=xkaspersky-labs.com,10.77.2.3,fd77:2::3
    --host-record=example.org,10.77.3.1,fd77:3::1
    # chain: Kaspersky -> Kaspersky -> neutral CDN-like name
    --cname=activation-v2.kaspersky.com,activation-v2.geo.kaspersky.com
    --cname=activation-v2.geo.kaspersky.com,kav-act.edge.example.net
    # chain: ordinary name -> Kaspersky name
    --cname=av-updates.example.org,dnl-03.geo.kaspersky.com
    # unknown names below these are NXDOMAIN, never forwarded
    --local=/kaspersky.com/ --local=/kaspersky-labs.com/ --local=/example.org/
)
