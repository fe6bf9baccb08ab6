# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     notebook_metadata_filter: -jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 3. The rendezvous: introducing two peers
#
# By the end of this notebook you will be able to:
#
# * say what the server sends each side of an introduction, and over what;
# * read a trace of the rendezvous and tell when each peer learned the other's
#   public address;
# * explain what the introduction's token proves, and why Bob answers
#   `INITIATE_CHAT` with `INITIATE_CHAT_ACK`;
# * predict what the server does with a request for an unknown identifier;
# * read a partner's address out of an `INITIATE_CHAT` datagram.
#
# Both peers are registered, but neither knows the other's public address.
# The server has seen both, and both can reach it, so it tells each side
# where the other is. The classic description of UDP hole punching has the
# same step (Ford, Srisuresh and Kegel, "Peer-to-Peer Communication Across
# Network Address Translators", USENIX ATC 2005, section 3); in ICE, too, the
# two agents exchange addresses before testing them (RFC 8445 §5 and §6).
#
# Alice wants to talk to Bob. She knows Bob's identifier (he told her, say, in
# class). She asks the server over HTTP:
#
#     POST /start-communication   {"peerInitiator": ALICE_ID, "peer": BOB_ID}
#
# The server answers Alice with Bob's public address, and at the same moment
# sends Bob an `INITIATE_CHAT` datagram carrying Alice's public address. Now
# both know where to aim.
#
# NAT B lets the server's datagram in because Bob has sent to the server
# (his registration, then `HEART-BEAT`s). Both NATs here are
# `port-restricted-cone`: endpoint-independent mapping, and
# address-and-port-dependent filtering, which admits the endpoints the
# mapping has sent to (RFC 4787 §5).
#
# **Predict first**, before you run the cell below the question: what will
# the `INITIATE_CHAT` datagram that the server sends Bob carry?

# %%
from punchlab.exercises import initiate_chat_question

NAT_A_KIND = "port-restricted-cone"
NAT_B_KIND = "port-restricted-cone"
initiate_chat_question(lambda: NAT_A_KIND, lambda: NAT_B_KIND)

# %%
from punchlab.scenes import introduced

# Both register (one virtual second), then Alice asks the server for Bob and
# the network runs for another 100 ms.
scene = introduced(NAT_A_KIND, NAT_B_KIND)
net, server, alice, bob = scene.net, scene.server, scene.alice, scene.bob
start = scene.asked
print(net.trace.filter(types=["HTTP", "INITIATE_CHAT"], time_range=(start, net.now)).table())

# %% [markdown]
# Read the rows: Alice's HTTP request reaches the server after one trip; the
# server sends `INITIATE_CHAT` to Bob's public address and the HTTP answer to
# Alice. The payload of `INITIATE_CHAT` is Alice's public `ip:port`, exactly what
# the server saw when she registered.
#
# The `ms` column counts from Alice's request. At 41.0 ms NAT B translates
# `INITIATE_CHAT` to Bob's private `10.0.2.2:5000`; at 42.0 ms both peers
# know the other's address. The cell below prints the payload,
# `198.51.100.1:5000`: NAT A's public address and port.

# %%
for event in net.trace.filter(types=["INITIATE_CHAT"], kinds=["sent"]):
    print(event.payload)

# %%
from punchlab.diagram import sequence_diagram

_ = sequence_diagram(net.trace, time_range=(start - 0.001, start + 0.09))

# %% [markdown]
# In the diagram time runs down from Alice's request at 1000 ms. Find the
# dashed HTTP lines, the blue `INITIATE_CHAT` through NAT B to Bob, and his
# `INITIATE_CHAT_ACK` (see below). The `HELLO` and `SUCCESS` lines are the
# punch of notebook 4.
#
# The diagram draws the HTTP request as a straight line from Alice to the
# server (the table shows it leaving from her private address): the simulator
# does not put HTTP through NAT A's table; it only tells the server that the
# request came from NAT A's public IP, as a real NAT would. In reality the
# request is a TCP connection, and it crosses NAT A
# like everything else: a NAT translates TCP too (RFC 5382), and gives it a
# TCP mapping separate from the UDP mapping of port 5000 that the server
# handed to Bob. The HTTP answer comes back because Alice opened the
# connection from inside (RFC 5382 §4.2). Only the UDP address matters for
# the punch.
#
# ## Tokens, secrets and INITIATE_CHAT_ACK
#
# Two punchlab peers and a punchlab server add a few JSON keys to these
# messages (the original Go programs ignore keys they do not know):
#
# * the **token**: the server makes one per introduction and gives the same
#   one to both sides, to Alice in the HTTP answer and to Bob in
#   `INITIATE_CHAT`. It proves that the sender got this introduction from
#   the server, whatever port it sends from. Peers use it only when both
#   announced the `token` feature at registration. Then each puts it on every
#   datagram to the other, and a datagram from the partner without it is
#   ignored: a stranger who guesses Alice's address still cannot pass for
#   Bob. (It is not encrypted: anyone who sees the datagrams can copy it.)
# * the **secret**: each peer gets its own when it registers. The server copies
#   Bob's secret into his `INITIATE_CHAT`, which proves to Bob that the server
#   sent it and not someone forging the server's source address. Alice sends
#   hers with `start-communication`, to prove she is the initiator.
# * **`INITIATE_CHAT_ACK`**: `INITIATE_CHAT` is a single UDP datagram and may
#   be lost, so Bob acknowledges it, and until the acknowledgement arrives the
#   server sends it again after 0.25 s, 0.5 s, then every second (at most ten
#   more copies, each only if Bob has been heard from since the last one).
#   That is the `INITIATE_CHAT_ACK` arrow above; it carries the token. Only
#   peers that announced the `ack` feature get copies; a Go client gets
#   `INITIATE_CHAT` once.
#
# Bob's acknowledgement reached the server at about 1063 ms, before the first
# copy was due, so `INITIATE_CHAT` went out once.
#
# Both sides now hold the same token (the secrets are random, so they are not
# printed):

# %%
print("Alice's token:", alice.core.token)
print("Bob's token:  ", bob.core.token)

# %% [markdown]
# Both lines show the same 16 hex digits: Alice's came in the HTTP answer,
# Bob's in `INITIATE_CHAT`.
#
# ## When something is wrong
#
# punchlab's server checks before it answers. An unknown identifier gets
# `404` and nothing is sent over UDP (the original answered `200` and left the
# other side waiting forever). Carol, who joins now, asks for an identifier
# nobody has.
#
# **Predict first**: how many UDP datagrams will the server send because of
# her request (to anyone)?

# %%
from punchlab.exercises import unknown_peer_question

WANTED = "no-such-peer"
unknown_peer_question(lambda: WANTED)

# %%
carol = net.add_peer("Carol", behind=net.add_nat("NAT C", "port-restricted-cone"))
carol.register()
net.run_for(1.0)
asked = net.now
carol.connect(WANTED)
net.run_for(0.1)
print(carol.errors[-1])
udp = [e for e in net.trace.filter(actors=["server"], kinds=["sent"]) if e.msg_type != "HTTP"]
print("UDP datagrams the server sent since:", sum(1 for e in udp if e.time >= asked))

# %% [markdown]
# The first line is the refusal Carol got over HTTP; the second shows that
# the server sent no UDP datagram.
#
# ## Exercise: read the introduction
#
# Bob's peer has to read Alice's public address out of the `INITIATE_CHAT`
# datagram. Write `partner_address(datagram)`: it gets the datagram's bytes
# (one JSON object, like the one printed at the top of notebook 2, whose
# `payload` is the text `ip:port`) and returns the address as a tuple
# `(ip, port)`, the port a number. The check runs the rendezvous with Alice
# behind several kinds of NAT and compares your answer with the address the
# server saw her register from.


# %% tags=["exercise-stub", "exercise:03-partner-address"]
def partner_address(datagram):
    raise NotImplementedError


# %% tags=["exercise-check", "exercise:03-partner-address"]
from punchlab.exercises import EXERCISES

exercise = EXERCISES["03-partner-address"]()
exercise.check()

# %% [markdown]
# ## Summary
#
# * The server answered Alice's HTTP request and sent Bob `INITIATE_CHAT` at
#   the same moment; both arrived 42 ms after she asked.
# * `INITIATE_CHAT` carried `198.51.100.1:5000`, Alice's registered public
#   address.
# * NAT B let it in, because Bob's mapping had sent to the server.
# * Alice and Bob held the same token, and Bob's `INITIATE_CHAT_ACK` arrived
#   before any resend.
# * An unknown identifier got `404`, and the server sent no UDP datagram.
#
# ## What comes next
#
# Both peers know where to aim, but their NATs still drop what the other
# sends. In [4. Hole punching](04-hole-punching.ipynb), `HELLO` and `SUCCESS`
# open a path through both NATs.
