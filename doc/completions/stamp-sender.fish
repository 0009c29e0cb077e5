complete -c stamp-sender -s r -l remote-addr -d 'Reflector to send to: ADDR, HOST, ADDR:PORT or [IPv6]:PORT; repeat for several targets' -r
complete -c stamp-sender -s p -l remote-port -d 'Reflector UDP port for addresses given without one [default: 862]' -r
complete -c stamp-sender -s S -l local-addr -d 'Local bind address [default: 0.0.0.0, or :: when the remote is IPv6]' -r
complete -c stamp-sender -s o -l local-port -d 'Local UDP port [default: 862 on a reflector; any free port on a sender]' -r
complete -c stamp-sender -l config -d 'TOML config file (keys: snake_case of the long flag names)' -r -F
complete -c stamp-sender -s c -l count -d 'Packets to send; 0 = until interrupted [default: 1000]' -r
complete -c stamp-sender -s d -l send-delay -d 'Interval between packets in milliseconds; fractions allowed [default: 1000]' -r
complete -c stamp-sender -s L -l timeout -d 'Seconds to wait before a packet counts as lost [default: 5]' -r
complete -c stamp-sender -s K -l clock-source -d 'Timestamp format [default: NTP]' -r -f -a "NTP\t'NTP 64-bit timestamps (the default, RFC 8762 §4.2.1)'
PTP\t'IEEE 1588v2 (PTP) truncated timestamps'"
complete -c stamp-sender -l error-scale -d 'Error Estimate override: Scale (0-63)' -r
complete -c stamp-sender -l error-multiplier -d 'Error Estimate override: Multiplier (0-255)' -r
complete -c stamp-sender -l clock-synchronized -d 'Error Estimate override: S bit (clock synchronized); `--clock-synchronized=false` clears it' -r -f -a "true\t''
false\t''"
complete -c stamp-sender -s A -l auth-mode -d 'Authenticated (A) or open (O) mode [default: O]' -r -f -a "A\t'Authenticated mode (RFC 8762 §4.2.2): HMAC over the base packet'
O\t'Unauthenticated ("open") mode'"
complete -c stamp-sender -l hmac-key -d 'HMAC key in hex, at least 16 octets (visible in `ps`: prefer --hmac-key-file or STAMP_HMAC_KEY)' -r
complete -c stamp-sender -l hmac-key-file -d 'File holding the HMAC key: hex text, or raw bytes if not hex; must not be readable by group/others' -r -F
complete -c stamp-sender -l hmac-key-dir -d 'Directory of per-SSID keys (`<ssid>.key`, `default.key` fallback)' -r -F
complete -c stamp-sender -l session-timeout -d 'Idle seconds after which a stateful session is forgotten [default: 300]' -r
complete -c stamp-sender -l tlv-mode -d 'Echo TLVs with RFC 8972 processing, or strip them keeping the length [default: echo]' -r -f -a "echo\t'Process them as RFC 8972 says and echo them'
ignore\t'Strip them, keeping the request\'s length'"
complete -c stamp-sender -l reflector-member-link-id -d 'RFC 9534 reflector micro-session ID (member-link identifier)' -r
complete -c stamp-sender -l transport -d 'Reflector transport: udp, or raw (whole IP packets; needs CAP_NET_RAW and the ttl-pnet feature) [default: udp]' -r -f -a "udp\t'A UDP socket (the default): no access to the received IP header'
raw\t'Whole IP packets from a raw (AF_PACKET) socket, replies from a bound UDP socket on the same port: the received IPv4 header and IPv6 extension headers are available to TLVs. Linux, CAP_NET_RAW, and a binary built with the `ttl-pnet` feature'"
complete -c stamp-sender -l max-pps -d 'Most requests per second answered per source (IPv4 address or IPv6 /64), token bucket' -r
complete -c stamp-sender -l reflector-rate-burst -d 'Burst allowed above --max-pps' -r
complete -c stamp-sender -l global-max-pps -d 'Most requests per second answered from all sources together (every worker), token bucket with one second of burst' -r
complete -c stamp-sender -l allow-session -d 'Provisioned session (RFC 8972 §3): SSID[@ADDR[/LEN]][:PORT] ([IPV6]:PORT with a port); when any is given, requests matching none are dropped' -r
complete -c stamp-sender -l max-sessions -d 'Most stateful sessions kept at once; a new one evicts the least recently used [default: 65536]' -r
complete -c stamp-sender -l reflected-control-max-count -d 'Asymmetrical packets policy: most replies per request' -r
complete -c stamp-sender -l reflected-control-max-size -d 'Asymmetrical packets policy: largest reply, octets' -r
complete -c stamp-sender -l reflected-control-min-interval-ns -d 'Asymmetrical packets policy: shortest interval between replies, ns' -r
complete -c stamp-sender -l ssid -d 'Session-Sender Identifier (RFC 8972 §3); 0 = none' -r
complete -c stamp-sender -l zero-ssid -d 'With --ssid: what to do when the reflector returns SSID 0 (it does not implement RFC 8972 §3) [default: continue]' -r -f -a "continue\t'Keep measuring; the summary counts such replies'
stop\t'Stop sending at the first one, wait for the replies in flight, report'"
complete -c stamp-sender -l padding -d 'Extra Padding TLV with N octets' -r
complete -c stamp-sender -l dscp -d 'DSCP (0-63) for the CoS TLV; also marks the sender\'s own packets' -r
complete -c stamp-sender -l ecn -d 'ECN (0-3) for the CoS TLV; also marks the sender\'s own packets' -r
complete -c stamp-sender -l access-report -d 'Access Report TLV with this Access ID (0-15; 1 = 3GPP, 2 = non-3GPP)' -r
complete -c stamp-sender -l access-return-code -d 'Return Code of the Access Report TLV' -r
complete -c stamp-sender -l dest-node-addr -d 'Destination Node Address TLV (RFC 9503)' -r
complete -c stamp-sender -l return-path-cc -d 'Return Path TLV with a Control Code sub-TLV: 0 = no reply, 1 = reply on the same link (RFC 9503)' -r
complete -c stamp-sender -l return-address -d 'Return Path TLV with a Return Address sub-TLV (RFC 9503)' -r
complete -c stamp-sender -l return-sr-mpls-labels -d 'Return Path TLV with an SR-MPLS label stack, top first (RFC 9503)' -r
complete -c stamp-sender -l return-srv6-sids -d 'Return Path TLV with an SRv6 segment list (RFC 9503)' -r
complete -c stamp-sender -l micro-session-id -d 'Micro-session ID TLV with this sender micro-session ID (RFC 9534)' -r
complete -c stamp-sender -l reflected-control-count -d 'Reflected Test Packet Control TLV: replies asked per request' -r
complete -c stamp-sender -l reflected-control-length -d 'Reflected Test Packet Control TLV: length of each reply, octets' -r
complete -c stamp-sender -l reflected-control-interval-ns -d 'Reflected Test Packet Control TLV: interval between replies, ns' -r
complete -c stamp-sender -l ber-pattern -d 'Bit pattern that fills the padding, hex [default pattern: FF00]' -r
complete -c stamp-sender -l ber-padding-size -d 'Padding octets carrying the bit pattern' -r
complete -c stamp-sender -l ipv6-dest-opt-len -d 'Add an IPv6 Destination Options header of N octets (multiple of 8, 8-2048) to every request (IPV6_DSTOPTS)' -r
complete -c stamp-sender -l tlv-code -d 'Override the type code of a draft TLV (e.g. ber-pattern=240); repeatable' -r
complete -c stamp-sender -l tlv-opt -d 'Raw option for a TLV plugin (sender and reflector side); repeatable' -r
complete -c stamp-sender -l output-format -d 'Result format [default: text]' -r -f -a "text\t'Human-readable text; the summary keeps the layout scripts parse'
json\t'One JSON object per record'
csv\t'Comma-separated values with a header line'"
complete -c stamp-sender -l report-interval -d 'Print interim (cumulative) statistics every S seconds' -r
complete -c stamp-sender -l log-format -d 'Log format [default: text]' -r -f -a "text\t'Plain text'
json\t'One JSON object per line'"
complete -c stamp-sender -l log-level -d 'Log filter, e.g. info or stamp_core=debug [default: info]' -r
complete -c stamp-sender -l metrics-addr -d 'Address of the Prometheus endpoint [default: 127.0.0.1:9090]' -r
complete -c stamp-sender -l snmp-socket -d 'AgentX socket of the master agent [default: /var/agentx/master]' -r -F
complete -c stamp-sender -l user -d 'Reflector started as root: bind the socket(s), then drop to this user\'s uid, gid and groups before any packet is read' -r
complete -c stamp-sender -l workers -d 'Worker threads [default: one per CPU]' -r
complete -c stamp-sender -l hwtstamp -d 'Hardware timestamping [default: auto]' -r -f -a "auto\t'Use hardware timestamps where the interface offers them, else software'
on\t'Require hardware timestamps: failing to enable them is an error'
off\t'Never use hardware timestamps'"
complete -c stamp-sender -l gso -d 'Reflector: send consecutive same-size replies to one sender as one UDP segmentation offload (GSO) message [default: on]' -r -f -a "on\t'Consecutive replies to one sender with the same size leave as one UDP_SEGMENT send (Linux); off by itself where the kernel refuses it'
off\t'One datagram per message'"
complete -c stamp-sender -l plot -d 'Write an SVG plot to FILE: delay over time with losses marked, and the latency CDF' -r -F
complete -c stamp-sender -s i -l is-reflector -d 'Run as Session-Reflector (else Session-Sender)'
complete -c stamp-sender -l stateful-reflector -d 'Keep per-session reflector counters (RFC 8762 §4.3.2)'
complete -c stamp-sender -l verify-tlv-hmac -d 'Verify the HMAC TLV (RFC 8972 §4.8)'
complete -c stamp-sender -l location -d 'Location TLV (RFC 8972 type 2)'
complete -c stamp-sender -l timestamp-info -d 'Timestamp Information TLV (RFC 8972 type 3)'
complete -c stamp-sender -l direct-measurement -d 'Direct Measurement TLV (RFC 8972 type 5)'
complete -c stamp-sender -l follow-up-telemetry -d 'Follow-Up Telemetry TLV (RFC 8972 type 7)'
complete -c stamp-sender -l cos -d 'Class of Service TLV (RFC 8972 type 4)'
complete -c stamp-sender -l ber -d 'Bit error rate TLVs (draft-gandhi-ippm-stamp-ber)'
complete -c stamp-sender -l reflected-fixed-hdr -d 'Reflected Fixed Header Data TLV (draft-ietf-ippm-stamp-ext-hdr)'
complete -c stamp-sender -l reflected-ipv6-ext-hdr -d 'Reflected IPv6 Extension Header Data TLV (draft-ietf-ippm-stamp-ext-hdr)'
complete -c stamp-sender -s R -l per-packet -d 'One line per packet'
complete -c stamp-sender -l list-tlvs -d 'Print the registered TLV handlers (type, name, specification, crate) and exit'
complete -c stamp-sender -l metrics -d 'Serve Prometheus metrics'
complete -c stamp-sender -l snmp -d 'Run an AgentX SNMP sub-agent'
complete -c stamp-sender -l histogram -d 'Print an RTT histogram with the summary (JSON: bucket arrays)'
complete -c stamp-sender -s h -l help -d 'Print help (see more with \'--help\')'
complete -c stamp-sender -s V -l version -d 'Print version'
