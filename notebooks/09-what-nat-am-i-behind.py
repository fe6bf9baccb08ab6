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
# # 9. What kind of NAT am I behind?
#
# By the end of this notebook you will be able to:
#
# * say what a STUN Binding request is, and why registering with punchlab's
#   server already is one in all but name;
# * run RFC 5780's mapping and filtering tests step by step, and read from
#   their answers which RFC 4787 behaviours a NAT has;
# * tell when a checker's answer cannot be trusted;
# * check your own machine with `punchlab natcheck`.
#
# In notebook 2 the server told Alice her public address. STUN, Session
# Traversal Utilities for NAT (RFC 8489), does the same with a *Binding
# request*: the server answers with the source address it saw, in an
# attribute called XOR-MAPPED-ADDRESS. ICE calls that address the
# *server-reflexive* address (RFC 8445 §5.1.1.2). So punchlab's registration
# is a STUN Binding in all but name, and punchlab's rendezvous port answers
# real STUN Binding requests too: the first byte tells them apart (JSON starts
# with `{`, a STUN message with two zero bits).
#
# Knowing your public address does not tell you how your NAT *behaves*.
# Classic STUN (RFC 3489) tried to sort NATs into the four classic types, and
# RFC 5389 §2 gave that up: the classification "was found to be faulty, as
# many NATs did not fit cleanly into the types defined there". RFC 5780
# (2010, an Experimental RFC) measures the two behaviours of RFC 4787 one at
# a time instead, and says in its abstract that it discovers the *current*
# behaviour: a snapshot, not a promise.
#
# ## The tests
#
# RFC 5780's server has two IP addresses and listens on two ports on each.
# It tells the client its other address and port (OTHER-ADDRESS), and on
# request (CHANGE-REQUEST) answers from the other IP, the other port or both.
#
# * **Mapping** (RFC 5780 §4.3), from one socket: test I to the server's
#   primary address; test II to its *other IP*, same port; test III to its
#   other IP *and* other port. Same public address each time:
#   endpoint-independent mapping. A new one for a new IP, but not for a new
#   port: address-dependent. A new one each time: address-and-port-dependent.
# * **Filtering** (§4.4), from a fresh socket, because the mapping tests have
#   already opened the first one's filter to the server's other address: test
#   I to the primary address, then test II asks for the answer from the other
#   IP and port, test III from the other port only. Whichever answers get in
#   tell the filtering.
#
# Here is a mystery NAT on the simulator, and a STUN server with two public
# addresses. **Predict first**: will mapping test II see the same public
# address as test I? And will filtering test II's answer, which comes from an
# address the socket never sent to, get in?

# %%
from punchlab.exercises import stun_filter_question, stun_port_question

MYSTERY = "ADM/APDF"  # any of punchlab.sim.BEHAVIOURS; try "EIM/EIF" or "APDM/ADF"
stun_port_question(lambda: MYSTERY)

# %%
stun_filter_question(lambda: MYSTERY)

# %% [markdown]
# Run the tests. Each line below is one test: from which local socket, to
# which server address (and whether it asked for a change), and what came
# back. "No answer after 3 tries" is an answer too: that is how the
# filtering tests see a filter. The NAT's true configuration is printed last,
# for checking.

# %%
from punchlab.scenes import natcheck

check = natcheck(MYSTERY)
for test in check.result.tests:
    print(test.describe())
print()
print("mapping:  ", check.result.mapping)
print("filtering:", check.result.filtering)
truth = check.network.nat("NAT A").config
print(f"the NAT really is {truth.name}: {truth.mapping} mapping, {truth.filtering} filtering")

# %% [markdown]
# With `MYSTERY = "ADM/APDF"`, mapping tests I and II saw two different
# public ports (the server's other IP got a new mapping) and test III, to the
# same other IP on another port, saw test II's port again: address-dependent
# mapping. Filtering tests II and III got no answer at all, so only the exact
# address and port the socket had sent to may answer:
# address-and-port-dependent filtering.
#
# The sequence diagram draws the same seven tests, one arrow per datagram.
# The first four requests are answered. The requests that ask for a change
# are answered too, but each answer ends in a cross at NAT A, "filtered by
# NAT": the proof, packet by packet, of address-and-port-dependent filtering.
# Each is tried three times before the client gives up; the grey bands are
# the waits, doubled each time as RFC 8489 §6.2.1 asks. The last three
# requests are the hairpinning test, which this NAT does not do.

# %%
from punchlab.diagram import sequence_diagram

_ = sequence_diagram(check.network.trace, types=["STUN"])

# %% [markdown]
# ## Exercise: read the tests
#
# Write `read_the_tests(tests)`: from a list of tests like the one printed
# above, return the pair `(mapping, filtering)`, each one of
# `"endpoint-independent"`, `"address-dependent"`,
# `"address-and-port-dependent"`. Each test has `name` (`"mapping test I"`,
# ..., `"filtering test III"`, `"hairpinning"`), and `mapped`, the public
# address the server reported, or `None` when no answer came. A test the
# client did not need to run is not in the list (mapping test III runs only
# when test II saw a new address). The check runs every one of the nine NATs
# of notebook 5 through the tests and compares your pair with the NAT's
# configuration.


# %% tags=["exercise-stub", "exercise:09-read-the-tests"]
def read_the_tests(tests):
    raise NotImplementedError


# %% tags=["exercise-check", "exercise:09-read-the-tests"]
from punchlab.exercises import EXERCISES

exercise = EXERCISES["09-read-the-tests"]()
exercise.check()

# %% [markdown]
# ## When the answer is wrong
#
# Many public STUN servers have one address and ignore CHANGE-REQUEST. A
# naive checker then sees filtering test II answered (by the same address it
# asked) and reports endpoint-independent filtering, even behind the
# strictest NAT. punchlab's checker compares where each answer really came
# from with where it was asked to come from. Here the mystery NAT is an
# `EIM/APDF` one (a port-restricted cone) and the server plays that careless
# part:

# %%
careless = natcheck("EIM/APDF", honours_change_request=False)
(asked,) = [test for test in careless.result.tests if test.name == "filtering test II"]
print(asked.describe())
print("filtering:", careless.result.filtering)
print("problem:  ", careless.result.problem)

# %% [markdown]
# The printed test shows the answer arriving from the server's primary
# address, the one the request went to, so the checker reports no filtering
# at all and says why, rather than a wrong one.
#
# There are other reasons to hold a verdict loosely. The tests run from two
# sockets at one moment, and the NAT may behave differently for other
# sockets or later: Linux's `masquerade` keeps the inside port only while it
# is free (notebook 8), so a busy NAT can look endpoint-independent to one
# test and not to another. A NAT with several public addresses may map a new
# destination to another address (RFC 4787 REQ-2 recommends it does not).
# And hairpinning (§4.5) is hidden by a NAT that maps per destination and
# filters: the request it turns round comes from a new port, which its own
# filter drops. The checker reports that as "not seen", not as "no".
#
# ## On real NATs, beside coturn
#
# coturn, a widely used open-source STUN and TURN server, ships its own
# checker, `turnutils_natdiscovery`. punchlab's lab puts a real Linux NAT in
# front of a host and a STUN server with two public addresses (203.0.113.1
# and .2), then runs both checkers against punchlab's server. Where the
# machine allows (Linux, root, nftables, coturn), the next cell runs live,
# behind a port-restricted cone NAT (plain `masquerade`); elsewhere it says
# why and does nothing. The project's tests run every lab NAT kind with both
# checkers against both servers, and all 20 combinations agree with the NAT
# the lab built (`tests/test_netlab_natcheck.py`).

# %%
# NBVAL_IGNORE_OUTPUT
import shutil

from punchlab import netlab

coturn = shutil.which("turnutils_natdiscovery") is not None
if netlab.available() and coturn:
    from punchlab.netlab.natcheck import natcheck as lab_natcheck

    for answer in await lab_natcheck("port-restricted-cone", servers=("punchlab",)):
        print(answer.summary())
else:
    print("; ".join(netlab.lab_problems()) or "coturn is not installed (apt-get install coturn)")

# %% [markdown]
# From a terminal, as root: `punchlab netlab natcheck --nat symmetric
# --client punchlab coturn --server punchlab coturn`.
#
# ## Your own machine
#
# To test the NAT you are behind, you need an RFC 5780 server outside it,
# with two public addresses. A teacher with such a machine runs
# `punchlab serve --host IP1 --stun-alternate IP2` (or coturn's `turnserver`
# with two `--listening-ip`), and students run
# `punchlab natcheck --server IP1`. The report lists each test as above, the
# verdict in RFC 4787's words, and the row of notebook 5's matrix it puts you
# in. A punchlab peer whose server runs one does the same by itself after
# registering, in the background, and says what it found.
#
# ## Summary
#
# * A STUN Binding answer is the server-reflexive address; punchlab's
#   registration answer is the same thing in JSON.
# * RFC 5780's mapping tests compare the public address seen from the
#   server's different addresses; its filtering tests ask for answers from
#   addresses the socket never contacted and see which get in.
# * A verdict is a snapshot of one NAT at one moment, and only as good as
#   the server: one that ignores CHANGE-REQUEST makes a naive checker claim
#   endpoint-independent filtering.
# * punchlab's checker and coturn's agree on every real NAT the lab builds.
#
# ## What comes next
#
# Knowing both sides' behaviours, a peer can choose how to connect: the
# direct punch of notebook 4 where the matrix of [notebook 5](05-nat-types.ipynb)
# says yes, and port prediction, birthday probing or a relay where it says
# no. [10. When punching gets hard](10-when-punching-gets-hard.ipynb) climbs
# that ladder.
