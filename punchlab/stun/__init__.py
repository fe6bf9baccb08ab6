"""STUN (RFC 8489) and NAT behaviour discovery (RFC 5780), without IO.

:mod:`~punchlab.stun.codec` turns messages into bytes and back,
:mod:`~punchlab.stun.responder` is the server side and
:mod:`~punchlab.stun.discovery` the client that runs RFC 5780's tests. The
asyncio driver (:mod:`punchlab.aio.stun`) and the simulator drive them.
"""
