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
# # 14. UDP does not promise anything
#
# By the end of this notebook you will be able to:
#
# * say what UDP promises about delivery, order and duplicates (nothing), and
#   predict how many chat lines a lossy link loses;
# * explain how numbered lines, acknowledgements and retransmission with
#   backoff make a chat deliver every line once and in order;
# * read a line's state in the chat (sent, delivered, failed after N tries)
#   and say when a line is given up;
# * measure what reliability costs in datagrams and in latency;
# * write the receiver's side: hand lines over in order, once.
#
# UDP is "transaction oriented, and delivery and duplicate protection are not
# guaranteed" (RFC 768, Introduction). The chat of notebook 6 sends each line
# as one `TEXT` datagram and forgets it, as the original Go program does. A
# datagram the network drops is a line the other side never reads, and
# neither side knows. RFC 8085 (UDP Usage Guidelines, §3.3) says that an
# application that needs reliable or ordered delivery must build it itself.
#
# **Predict first.** Alice sends 100 lines, one every 50 ms, over an internet
# that loses 30% of datagrams. How many does Bob read?

# %%
from punchlab.exercises_reliable import lines_question

lines_question(lambda: 100, lambda: 0.3)

# %% [markdown]
# ## Without acknowledgements
#
# `punchlab.sim.chat.chat` connects two peers behind full-cone NATs over a
# clean internet, then makes the internet lossy and lets Alice type. The punch
# itself is chapter 4's business; here only the chat is measured. With
# `reliable=False` neither peer announces the `reliable` feature, so `TEXT`
# is the Go program's plain datagram.

# %%
from punchlab.sim.chat import chat

plain = chat(100, seed=0, loss=0.3, reliable=False)
print(plain.summary())
missing = [line for line in plain.sent if line not in plain.received]
print("Bob never read:", ", ".join(missing[:8]), "...")
print("Alice was told of", plain.failed, "lost lines")

# %% [markdown]
# ## Number the lines, acknowledge them, send them again
#
# Between two punchlab peers that both announced `reliable` in `features`,
# every `TEXT` carries a sequence number in a new key, `seq`, and the
# receiver answers each one with a new message type, `TEXT-ACK`. A Go peer
# never announces `reliable`, so it gets plain `TEXT` exactly as before; the
# token of the introduction is on both, as on every datagram between two
# punchlab peers:

# %%
from punchlab.messages import Message, MessageType, encode

token = "0123456789abcdef"
print(encode(Message(MessageType.TEXT, "hello\n", token, seq=7)).decode())
print(encode(Message(MessageType.TEXT_ACK, "6;8-9,12", token)).decode())

# %% [markdown]
# The acknowledgement says *everything up to 6 arrived, and 8 to 9, and 12
# too*: a cumulative part, as TCP's, and a selective part in blocks, as TCP's
# SACK option (RFC 2018, at most four blocks here too), so one lost
# `TEXT-ACK` costs nothing once a later one arrives.
# The rest is in `punchlab.reliable`:
#
# * **the sender** keeps at most 64 `TEXT`s unacknowledged (its *window*; a
#   long line cut into pieces counts each piece) and sends each again when
#   its timer runs out. The first timeout is 1 s, as
#   RFC 6298 §2.1 sets it and RFC 8085 §3.1.3 recommends for a low data-volume
#   application; after that it comes from the round trips measured (RFC 6298
#   §2: SRTT + 4 RTTVAR, with a 200 ms floor, as Linux TCP uses), never from
#   a line sent twice, whose acknowledgement could answer either copy (Karn
#   and Partridge, 1987). Each retransmission waits twice as long as the one
#   before (RFC 8085 §3.1.3: exponential backoff), up to 8 s (RFC 6298 §2.5
#   allows a ceiling only of 60 s or more; a chat line retried once a minute
#   is lost to its reader, and the liveness timeout ends the tries anyway).
#   There is no congestion control beyond the window and the backoff, which
#   RFC 8085 §3.1 asks of bulk senders: a chat sends a line at a time. When three later
#   lines are acknowledged before one, that one is sent again at once: it is
#   lost, not late (RFC 5681 §3.2, fast retransmit);
# * **the receiver** hands lines to the reader in order and once: it holds
#   early `TEXT`s (at most 64 ahead of the last one handed over, whatever a
#   stranger sends) and drops the copies of lines it already has;
# * **an acknowledgement is a claim**: it must carry the introduction's token,
#   and one that names a line never sent is recorded and changes nothing. It
#   goes to the partner's address, never to wherever a `TEXT` came from, and
#   names at most four blocks beyond its cumulative part, so nobody can turn
#   it into a flood aimed at someone else.
#
# The same 100 lines, the same losses, acknowledged:

# %%
acked = chat(100, seed=0, loss=0.3)
print(plain.summary())
print(acked.summary())
print("Alice's peer reported", acked.delivered, "lines delivered,", acked.failed, "failed")

# %% [markdown]
# ## One lost line, exactly
#
# A random loss hides what happens. Here the simulator drops exactly the
# first `TEXT` on the internet (`drop_first`, a hook of the simulated network), and
# every other datagram passes. Alice's peer tells her, line by line, what the
# chat command prints and the panel shows beside the line:

# %%
from punchlab.narrate import tell
from punchlab.peer import TextDelivered, TextSent
from punchlab.sim.network import drop_first


def listen(peer, net, kinds):
    """(time, event) for each of ``peer``'s events of these kinds, as they happen."""
    told = []
    peer.add_listener(
        lambda event: told.append((net.now, event)) if isinstance(event, kinds) else None
    )
    return told


one = chat(0, seed=0, loss=0.0)
net = one.network
alice, bob = net.peers
net.route_packet = drop_first("TEXT", link="internet")
told = listen(alice, net, (TextSent, TextDelivered))
started = net.now
alice.send_text("this one is lost once")
net.run_for(2.0)
for when, event in told:
    print(f"{(when - started) * 1000:6.0f} ms  {tell(event)}")
print("Bob read:", bob.texts)

# %% [markdown]
# The sequence diagram of the same second: the first `TEXT` stops at the
# cross on the internet; no `TEXT-ACK` comes back; 1 s later (the first
# timeout) the same line goes again, and its acknowledgement arrives one
# round trip (44 ms) later.

# %%
from punchlab.diagram import sequence_diagram

window = (started - 0.01, started + 1.1)
_ = sequence_diagram(net.trace, types=["TEXT", "TEXT-ACK"], time_range=window)

# %% [markdown]
# ## Copies and overtaking
#
# Links also duplicate datagrams and deliver them out of order. With 10% of
# each on top of 30% loss, Bob's peer drops every copy and holds every early
# line until the gap before it fills: Bob reads each line once, in order.
# The test suite checks this for 50 seeds in both directions
# (`tests/test_reliable.py`); here are 20:

# %%
runs = [chat(30, seed=seed, loss=0.3, duplicate=0.1, reorder=0.1) for seed in range(20)]
right = sum(run.exactly_once_in_order for run in runs)
print(right, "of", len(runs), "runs: every line once, in order")
copies = sum(e.reason == "duplicate" for run in runs for e in run.trace if e.actor == "B")
print(copies, "copies dropped by Bob's peer over the 20 runs")

# %% [markdown]
# ## When a line is given up
#
# A line is retried until it is acknowledged, or until its peer is declared
# gone: after `PeerConfig.peer_timeout` (30 s) without a single datagram from
# it. A fixed number of tries would give up on a line during a long but
# passing outage; the liveness timeout is the one place that decides the
# partner is gone. Here Bob closes his chat and Alice keeps typing:

# %%
from punchlab.peer import Disconnected, TextFailed

gone = chat(0, seed=0, loss=0.0)
net = gone.network
alice, bob = net.peers
told = listen(alice, net, (TextSent, TextFailed, Disconnected))
bob.close()
started = net.now
alice.send_text("is anyone there?")
net.run_for(40.0)
for when, event in told:
    print(f"{when - started:5.1f} s  {tell(event)}")

# %% [markdown]
# ## What reliability costs
#
# Each line now costs its `TEXT`, the copies sent again, and an
# acknowledgement for each copy that arrives; and a line that must wait for
# an earlier one (or for its own second try) reaches the reader later. The
# figure measures both against plain `TEXT`, over five seeds for each loss
# rate, on one axis per quantity (`bench/reliable_chat.py` prints the same
# for 20 seeds at 30%).

# %%
import statistics

import matplotlib.pyplot as plt

from punchlab.diagram import BLUE, ORANGE

LOSSES = (0.0, 0.1, 0.2, 0.3, 0.4)
SEEDS = range(5)


def measure(reliable):
    rows = []
    for loss in LOSSES:
        done = [chat(100, seed=seed, loss=loss, reliable=reliable) for seed in SEEDS]
        latencies = sorted(latency for run in done for latency in run.latencies)
        rows.append(
            {
                "arrived": statistics.fmean(run.arrived for run in done),
                "datagrams": statistics.fmean(run.datagrams for run in done) / 100,
                "median": 1000 * statistics.median(latencies),
                "p95": 1000 * latencies[int(0.95 * (len(latencies) - 1))],
            }
        )
    return rows


without, with_acks = measure(False), measure(True)
xs = [100 * loss for loss in LOSSES]
fig, (left, middle, right) = plt.subplots(1, 3, figsize=(9.5, 3.6), layout="constrained")
for ax, key, title in (
    (left, "arrived", "lines Bob reads (of 100)"),
    (middle, "datagrams", "datagrams per line"),
    (right, "median", "latency to the reader (ms)"),
):
    ax.plot(xs, [row[key] for row in without], "s--", color=ORANGE, label="plain TEXT")
    ax.plot(xs, [row[key] for row in with_acks], "o-", color=BLUE, label="with acks")
    ax.set_title(title)
    ax.set_xlabel("loss (%)")
    ax.grid(alpha=0.3)
right.plot(xs, [row["p95"] for row in with_acks], "o:", color=BLUE, label="with acks, p95")
for line in right.lines[:2]:
    line.set_label(f"{line.get_label()}, median")
left.legend(loc="lower left", fontsize=8)
left.set_ylim(0, 105)
middle.set_ylim(0, None)
right.set_yscale("log")
right.legend(loc="upper left", fontsize=8)
for name, rows in (("plain TEXT", without), ("with acks", with_acks)):
    at = LOSSES.index(0.3)
    print(
        f"{name:10} at 30% loss: {rows[at]['arrived']:5.1f} lines, "
        f"{rows[at]['datagrams']:.2f} datagrams per line, "
        f"median {rows[at]['median']:.0f} ms, p95 {rows[at]['p95']:.0f} ms"
    )

# %% [markdown]
# At 30% loss, plain `TEXT` loses about 30 lines of 100 and costs one
# datagram per line; acknowledged, every line arrives, for about 2.5
# datagrams per line (about 1.4 `TEXT`, since each copy is lost with chance
# 0.3, and one `TEXT-ACK` per copy that arrives). Without loss the cost is
# exactly two datagrams a line and no added latency. The price under loss is
# latency: a lost line waits at least a round trip plus the timeout, and the
# lines behind it wait for it, since the reader gets them in order (TCP's
# *head-of-line blocking*). A chat may accept that; a voice call would rather
# lose the word.

# %% [markdown]
# ## Exercise: deliver in order, once
#
# Write `deliver(received, window)`, the receiver's side. `received` is a list
# of `(seq, text)` in the order the datagrams arrived (copies and all). Return
# the texts the reader gets: each seq once, in order from 1, nothing after a
# gap until the gap fills; a line more than `window` seqs past the last one
# handed over is dropped, not held (the sender will send it again). The check
# compares your answers with the peer's own receiver, `punchlab.reliable`.


# %% tags=["exercise-stub", "exercise:14-deliver"]
def deliver(received, window):
    raise NotImplementedError


# %% tags=["exercise-check", "exercise:14-deliver"]
from punchlab.exercises import EXERCISES

exercise = EXERCISES["14-deliver"]()
exercise.check()

# %% [markdown]
# ## Summary
#
# * UDP promises neither delivery nor order nor single copies (RFC 768); at
#   30% loss plain `TEXT` loses about 30 lines in 100 and nobody is told.
# * Between two punchlab peers that both announce `reliable`, lines carry a
#   `seq`, are acknowledged by `TEXT-ACK` (cumulative and selective), and are
#   sent again after a timeout that starts at 1 s, is measured from round
#   trips, and doubles on each loss (RFC 6298, RFC 8085 §3.1.3). The reader
#   gets every line once, in order; the sender sees each line sent, delivered
#   or failed. A Go peer still gets plain `TEXT`.
# * A line is given up only when the peer is declared gone (the liveness
#   timeout), and an acknowledgement, like every datagram, is a claim: it
#   needs the token, and one for a line never sent changes nothing.
# * Reliability costs about 2.5 datagrams per line at 30% loss, and latency:
#   a lost line and every line behind it wait for its retransmission.
#
# ## What comes next
#
# Try it on real sockets: `punchlab chat` shows each line's state
# (`#3 sent`, `#3 delivered after 2 tries`), and `punchlab chat --no-acks`
# sends plain `TEXT` as the Go client does. `bench/reliable_chat.py`
# measures the cost over 20 seeds.
