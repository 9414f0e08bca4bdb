//! Capture files: pcap and pcapng. (Being written.)
