"""Commands built on the hub. Each turns its own options into a hub4com command line
(which ``--print-args`` shows) and runs it with `hub.main.main`.

com2tcp          com2tcp: a serial port (or pty) to a TCP client or listener, raw or telnet.
com2tcp_rfc2217  com2tcp-rfc2217: serve a port by RFC 2217, or attach a remote one.
com2tcp_esc      com2tcp-esc: the com0com escape stream over raw TCP.
multiplexer      multiplexer: several ports over one serial or TCP link.
gps_share        gps-share: one GPS receiver for many applications and TCP clients.
tap              hub4com-tap: watch a port of a running hub (its --http) from a terminal.
_common          what the wrappers share (.bat-style options, --print-args, running).
"""

#: The commands installed beside hub4com, and what each is for (`hub4com --help`).
COMMANDS = {
    "com2tcp-rfc2217": "serve a serial port over RFC 2217, or use a remote one as a local pty",
    "gps-share": "share one GPS receiver with many applications (ptys, TCP)",
    "com2tcp": "a serial port to a TCP client or server, raw or telnet",
    "com2tcp-esc": "a serial port's data and signals over raw TCP (com0com's escape stream)",
    "multiplexer": "several serial ports over one serial or TCP link",
    "hub4com-tap": "watch a port of a running hub (started with --http) from a terminal",
}
