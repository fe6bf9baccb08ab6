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
# Alice wants to talk to Bob. She knows Bob's identifier (he told her, say, in
# class). She asks the server over HTTP:
#
#     POST /start-communication   {"peerInitiator": ALICE_ID, "peer": BOB_ID}
#
# The server answers Alice with Bob's public address, and at the same moment
# sends Bob an `INITIATE_CHAT` datagram carrying Alice's public address. Now
# both know where to aim.
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

# %%
for event in net.trace.filter(types=["INITIATE_CHAT"], kinds=["sent"]):
    print(event.payload)

# %%
from punchlab.diagram import sequence_diagram

_ = sequence_diagram(net.trace, time_range=(start - 0.001, start + 0.09))

# %% [markdown]
# The diagram draws the HTTP request as a straight line from Alice to the
# server, because the simulator does not model NAT A for it. In reality it is
# a TCP connection, and it crosses NAT A like everything else: the NAT gives it
# a TCP mapping of its own, separate from the UDP mapping of port 5000 that the
# server handed to Bob. Only that UDP address matters for the punch.
#
# ## Tokens, secrets and INITIATE_CHAT_ACK
#
# Two punchlab peers and a punchlab server add a few JSON keys to these
# messages (the original Go programs ignore keys they do not know):
#
# * the **token**: the server makes one per introduction and gives the same
#   one to both sides, to Alice in the HTTP answer and to Bob in
#   `INITIATE_CHAT`. Each peer puts it on every datagram to the other, and a
#   datagram from the partner without it is ignored: a stranger who guesses
#   Alice's address still cannot pass for Bob.
# * the **secret**: each peer gets its own when it registers. The server copies
#   Bob's secret into his `INITIATE_CHAT`, which proves to Bob that the server
#   sent it and not someone forging the server's source address. Alice sends
#   hers with `start-communication`, to prove she is the initiator.
# * **`INITIATE_CHAT_ACK`**: `INITIATE_CHAT` is a single UDP datagram and may
#   be lost, so Bob acknowledges it, and until the acknowledgement arrives the
#   server sends it again after 0.25 s, 0.5 s, then every second (at most ten
#   more copies, each only if Bob has been heard from since the last one).
#   That is the `INITIATE_CHAT_ACK` arrow above.
#
# Both sides now hold the same token (the secrets are random, so they are not
# printed):

# %%
print("Alice's token:", alice.core.token)
print("Bob's token:  ", bob.core.token)

# %% [markdown]
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
# Next: [4. Hole punching](04-hole-punching.ipynb).
