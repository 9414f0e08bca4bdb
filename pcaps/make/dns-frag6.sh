#!/bin/bash
# dns-frag6.pcap: see dns-frag.sh
exec bash "$(dirname "$0")/dns-frag.sh" 6
