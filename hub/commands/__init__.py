"""Commands built on the hub. Each turns its own options into a hub4com command line
(which ``--print-args`` shows) and runs it with `hub.main.main`.

com2tcp          com2tcp: a serial port (or pty) to a TCP client or listener, raw or telnet.
com2tcp_rfc2217  com2tcp-rfc2217: serve a port by RFC 2217, or attach a remote one.
com2tcp_esc      com2tcp-esc: the com0com escape stream over raw TCP.
multiplexer      multiplexer: several ports over one serial or TCP link.
gps_share        gps-share: one GPS receiver for many applications and TCP clients.
_common          what the wrappers share (.bat-style options, --print-args, running).
"""
