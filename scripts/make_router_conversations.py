#!/usr/bin/env python3
"""Generate the router's multi-turn and weak-spot data (issue 18).

Writes two files (JSON lines, same label/source/category keys as ``extra.jsonl``):

* ``data/router/conversations.jsonl`` -- training rows;
* ``data/router/heldout.jsonl`` -- rows kept out of training, scored with
  ``train-router --eval data/router/heldout.jsonl``.

Multi-turn rows carry ``messages`` (a list of ``{"role", "content"}``) instead of
``text``; the label is what the *last user turn* needs given the conversation::

    {"messages": [...], "label": "simple"|"complex", "source": "harpoon-multiturn", "category": str}

Single-turn weak-spot rows (open-ended long writing, counterfactuals, Fermi estimates,
and simple look-alikes of each) carry ``text`` and ``source: "harpoon-weak-spots"``.

The held-out file is disjoint by construction, not by row: every pool below is split
into a training part and a held-out part (the last quarter of each list), so no first
turn, follow-up phrasing, topic or weak-spot prompt of the held-out file is seen in
training. Every string was written for this project; nothing is copied from a
benchmark. Python 3 standard library only, deterministic (seeded RNG, sorted then
shuffled):

    python3 scripts/make_router_conversations.py
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
from collections import Counter
from random import Random

SEED = 20261203
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_TRAIN = os.path.join(ROOT, "data", "router", "conversations.jsonl")
OUT_HELD = os.path.join(ROOT, "data", "router", "heldout.jsonl")
MULTI = "harpoon-multiturn"
WEAK = "harpoon-weak-spots"

# ---------------------------------------------------------------------------
# Conversation openers. Each hard opener has follow-ups that only make sense
# as a continuation of it, written with it (the generic follow-ups below are
# shared by all).
# ---------------------------------------------------------------------------

HARD_OPENERS: list[tuple[str, list[str]]] = [
    ("Prove that the sum of the first n odd numbers is n^2.", ["ok and for the first n even numbers?", "can you do it by induction instead?"]),
    ("Write a Python function that returns the longest palindromic substring of a string in better than cubic time.", ["now in Rust", "what's the complexity of your version?"]),
    ("A bag has 5 red and 7 blue marbles. I draw 3 without replacement. What is the probability that exactly two are red?", ["ok and for 3?", "and if I put each marble back?"]),
    ("Design a rate limiter for a public API that serves 50k requests per second across 12 servers.", ["what if a server dies?", "how would you test it?"]),
    ("Explain why the halting problem is undecidable, with the diagonal argument.", ["and what about Rice's theorem?", "give me an intuition for a 12 year old too"]),
    ("My Go service leaks goroutines under load. Here is the handler: `go func() { for v := range ch { process(v) } }()` -- the channel is never closed. How do I find and fix all the leaks?", ["and if ch is shared by several handlers?", "show the fixed code"]),
    ("Compare event sourcing and a plain CRUD database for an accounting system, with the trade-offs for audits, migrations and reporting.", ["which would you pick for a team of 3?", "and for 300 engineers?"]),
    ("Solve the recurrence T(n) = 3T(n/2) + n log n and justify each step.", ["and for 4T(n/2)?", "ok and for 2?"]),
    ("How many ways can 8 rooks be placed on a chessboard so that none attack each other and none sits on the main diagonal?", ["and for a 5x5 board?", "ok and for n=6?"]),
    ("Write a SQL query that returns, for each customer, their three most recent orders and the running total of what they spent, on Postgres.", ["now for MySQL 5.7 without window functions", "how do I index for it?"]),
    ("Derive the closed form of the Fibonacci numbers from the characteristic equation.", ["and for the Lucas numbers?", "ok now do the tribonacci case"]),
    ("Analyse the causes of the 2008 financial crisis and weigh which mattered most.", ["and how does 2023's banking stress compare?", "what would have prevented it?"]),
    ("Find the bug: my binary search `while lo < hi: mid = (lo+hi)//2; if a[mid] < x: lo = mid else: hi = mid` never terminates on some inputs. Why, and how do I fix it?", ["and the same in C with unsigned ints?", "write tests that would have caught it"]),
    ("Plan a 10-day rail trip through Japan for two people with a budget of 3,000 USD, balancing cities and countryside.", ["ok and for 14 days?", "what if we travel in winter?"]),
    ("Implement an LRU cache in TypeScript with O(1) get and put, and explain the invariants.", ["now make it thread-safe in Java", "and add a TTL per entry"]),
    ("Is it rational to buy extended warranties? Work through the expected value with realistic numbers.", ["and for a phone that costs 1,200?", "what if I'm very risk averse?"]),
    ("Show that every tree with n vertices has exactly n - 1 edges.", ["and for forests with k components?", "ok and for graphs with one cycle?"]),
    ("A train leaves at 9:10 going 80 km/h; another leaves the same station at 9:40 going 110 km/h on the same track. When and where does the second catch up? Show your reasoning.", ["ok and if the second goes 95?", "and for 3 trains?"]),
    ("Refactor this Java class that mixes database access, validation and email sending into something testable, and explain the design.", ["how would the tests look?", "and in Kotlin?"]),
    ("What are the strongest arguments for and against a four-day work week, with evidence?", ["which side convinces you more, and why?", "and for hospitals specifically?"]),
    ("Write a detailed 1,500-word essay on how the printing press changed European politics.", ["now a shorter version for a school newsletter", "add a section on censorship"]),
    ("Estimate how much water a city of one million people uses per day, explaining each assumption.", ["and for Dubai?", "ok and for 3 million?"]),
    ("What if the Roman Empire had never fallen? Walk through plausible consequences for language, religion and science.", ["and for the Americas?", "what about the printing press then?"]),
    ("Explain the CAP theorem and how Spanner gets around its practical limits.", ["and how does CockroachDB do it?", "what about DynamoDB?"]),
    ("Find all integer solutions of x^2 - y^2 = 2024 and explain the method.", ["ok and for 2025?", "and for x^2 + y^2 = 2025?"]),
    ("Build a study plan for learning linear algebra in 8 weeks from zero, with weekly goals and exercises.", ["and in 4 weeks?", "what if I only have 3 hours a week?"]),
    ("Design the database schema and API for a multi-tenant booking system for dentists.", ["how do I handle time zones?", "and cancellations with fees?"]),
    ("Why does quicksort average O(n log n) but degrade to O(n^2)? Give the analysis.", ["and for median-of-three pivots?", "ok and for introsort?"]),
    ("Write a concurrent web crawler in Rust with a bounded number of in-flight requests and polite per-host delays.", ["now add robots.txt", "how do I test it without the network?"]),
    ("Evaluate the trade-offs of nuclear versus offshore wind for a country like the Netherlands over the next 30 years.", ["and for Poland?", "what about costs by 2050?"]),
    ("I have a 40-row table of monthly sales by region. How should I test whether the spring campaign had an effect, and what could mislead me?", ["and if the regions differ a lot in size?", "what if I only have 6 months?"]),
    ("Prove that there is no largest prime and then that there are infinitely many primes of the form 4k+3.", ["and 4k+1?", "ok and 6k+5?"]),
    ("Explain how transformers use attention, derive the scaled dot product and why the scaling is there.", ["and multi-query attention?", "how does it change with rotary embeddings?"]),
    ("Write a business plan outline for a bicycle repair subscription in a mid-sized city, with costs and break-even.", ["and if we add e-bikes?", "what if rent doubles?"]),
    ("Three friends split a bill unevenly: A paid twice what B paid, C paid 15 more than B, total 215. Also tips were 18% on top, split equally. How much did each pay in total? Show the steps.", ["and with a 20% tip?", "ok and for 4 friends with D paying like C?"]),
    ("Debug why my React component re-renders endlessly when I set state inside useEffect that depends on an object built each render.", ["and with useMemo?", "how would you lint for this?"]),
    ("Outline and write a long-form piece on the ethics of gene editing in embryos.", ["add the counterarguments", "now cut it to 800 words keeping the argument"]),
    ("Compute the expected number of rolls of a fair die until every face has appeared, and explain.", ["and for a 20-sided die?", "ok and for 3 faces only?"]),
    ("Design an on-call rotation and incident process for a team of 9 across three time zones.", ["what about holidays?", "and how to measure if it's working?"]),
    ("Explain the proof that sqrt(2) is irrational and generalise it to sqrt(n) for non-square n.", ["and cube roots?", "ok and for 3?"]),
    ("Write a tokenizer and recursive-descent parser for arithmetic with + - * / and parentheses in C.", ["add unary minus", "and exponentiation, right associative?"]),
    ("Critically assess the claim that remote work lowers productivity, using the studies you know.", ["and for junior staff?", "what would a good experiment look like?"]),
    ("How many piano tuners are there in Chicago? Reason it out step by step.", ["and in London?", "ok and for guitar teachers?"]),
    ("What would have happened if the internet had been invented in 1920?", ["and for the Second World War?", "what about music?"]),
    ("Migrate a monolith's user sessions to a stateless JWT design without logging anyone out; plan the rollout.", ["and how do I revoke tokens?", "what if we have mobile clients on old versions?"]),
    ("Give a rigorous explanation of why the derivative of e^x is e^x, starting from a definition of e.", ["and for a^x?", "ok and ln x?"]),
    ("Write a 2,000-word short story about a lighthouse keeper who receives letters from the future, with three acts.", ["now continue it with a fourth act", "rewrite the ending as a twist"]),
    ("Estimate the number of golf balls that fit in a school bus, explaining your assumptions.", ["and in a Boeing 747?", "ok and for tennis balls?"]),
    ("If the moon were twice as close to Earth, what would change for tides, climate and life? Reason carefully.", ["and if it were twice as far?", "what about eclipses?"]),
    ("I need a Kubernetes deployment strategy for a stateful service with zero downtime upgrades; compare options.", ["and with a Postgres operator?", "what if we only have two nodes?"]),
    ("Calculate the monthly payment and total interest on a 320,000 mortgage at 4.1% over 25 years, and compare with 30 years.", ["ok and for 15 years?", "and at 5.3%?"]),
    ("Explain Bayes' theorem with a medical test example and why the base rate fallacy happens.", ["and with two independent tests?", "ok and for a prevalence of 10%?"]),
    ("Write an essay comparing how Orwell and Huxley imagined control of society, and which fits today better.", ["add a paragraph on social media", "and Atwood?"]),
    ("Design an algorithm to detect cycles in a directed graph with a million nodes, and analyse memory use.", ["and for an undirected one?", "how about in a streaming setting?"]),
    ("What if dinosaurs had not gone extinct? Think through how mammals and humans would have fared.", ["and birds?", "what about the climate?"]),
    ("Estimate how many tonnes of food New York City eats in a year.", ["ok and for Tokyo?", "and how many trucks is that per day?"]),
    ("Write a detailed proposal for a city to replace street parking with bike lanes, including costs, stakeholders and risks.", ["and for a city with steep hills?", "what would the timeline be?"]),
    ("Prove by contradiction that there are irrational numbers a and b with a^b rational.", ["and give a constructive example", "ok and for a=b?"]),
    ("Optimise this Python: for i in range(len(a)): for j in range(len(b)): if a[i] == b[j]: out.append(i) -- a and b have a million items.", ["and if I need the pairs?", "now with numpy"]),
    ("How would history differ if China had kept its treasure fleets and explored the Atlantic in the 1400s?", ["and for Europe's colonies?", "what about trade in silver?"]),
]

SIMPLE_OPENERS: list[tuple[str, list[str]]] = [
    ("What's 2+2?", ["ok and for 3?", "and 3+3?"]),
    ("Translate 'good morning' into Spanish.", ["and into Italian?", "ok and for 'good night'?"]),
    ("What is the capital of Canada?", ["and of Australia?", "ok and Brazil?"]),
    ("How many centimetres are in an inch?", ["and in a foot?", "ok and for 3 inches?"]),
    ("Give me a synonym for 'happy'.", ["another one?", "and for 'sad'?"]),
    ("Hi! How are you today?", ["cool, what's your name?", "thanks, you too"]),
    ("What's 15% of 80?", ["ok and of 120?", "and 20%?"]),
    ("Fix the spelling: 'I recieved the pacakge yesterday.'", ["and this one: 'definately tommorow'", "thanks! and 'seperate'?"]),
    ("What time zone is Paris in?", ["and London?", "ok and for Tokyo?"]),
    ("Convert 30 degrees Celsius to Fahrenheit.", ["ok and for 3?", "and 100?"]),
    ("Who wrote Pride and Prejudice?", ["and Emma?", "when was it published?"]),
    ("How do you say 'thank you' in German?", ["and in French?", "ok and 'please'?"]),
    ("What's the plural of 'mouse'?", ["and 'goose'?", "ok and for 'moose'?"]),
    ("Is a tomato a fruit?", ["and a cucumber?", "ok and avocado?"]),
    ("Summarise in one sentence: The library will close early on Friday for staff training and reopen Saturday at 9.", ["and make it shorter", "now as a tweet"]),
    ("What's 7 times 8?", ["ok and 7 times 9?", "and for 3?"]),
    ("What is the boiling point of water in Fahrenheit?", ["and the freezing point?", "ok and in Kelvin?"]),
    ("Give me a title for a blog post about houseplants.", ["another one?", "make it funnier"]),
    ("Define 'photosynthesis' in one line.", ["and 'respiration'?", "simpler please"]),
    ("How many days are in a leap year?", ["and in a normal one?", "ok and for 3 years?"]),
    ("Classify the sentiment: 'The delivery was late and the box was crushed.'", ["and 'Great service, will order again'?", "ok and for this: 'It was fine I guess'"]),
    ("What's the chemical symbol for gold?", ["and silver?", "ok and for iron?"]),
    ("Rewrite more politely: 'Send me the report now.'", ["and more formal?", "shorter please"]),
    ("How many legs does a spider have?", ["and an ant?", "ok and a crab?"]),
    ("Which is bigger, 0.5 or 0.45?", ["and 0.3 or 0.29?", "ok and for 3?"]),
    ("What's the opposite of 'ancient'?", ["and of 'generous'?", "another one?"]),
    ("Extract the date: 'Your appointment is on 14 March at 10:30.'", ["and the time?", "ok and from this: 'see you on the 3rd'"]),
    ("Good evening! Can you recommend a name for my cat?", ["another one?", "something shorter"]),
    ("How many ounces in a pound?", ["and grams in a kilo?", "ok and for 3 pounds?"]),
    ("What is the largest ocean?", ["and the smallest?", "ok and the deepest?"]),
    ("Turn this into a bullet list: eggs, milk, bread, apples.", ["add butter", "sort it alphabetically"]),
    ("What year did the Berlin Wall fall?", ["and when was it built?", "ok and the Soviet Union?"]),
    ("Translate 'where is the station?' into French.", ["and in Dutch?", "ok and for 'airport'?"]),
    ("What's the square root of 81?", ["and of 144?", "ok and for 3?"]),
    ("Is 'their' or 'there' right here: '___ car is red'?", ["and '___ is a dog outside'?", "thanks"]),
    ("What does 'CPU' stand for?", ["and 'RAM'?", "ok and GPU?"]),
    ("Tell me a fun fact about octopuses.", ["another one?", "and about penguins?"]),
    ("What's 100 divided by 4?", ["ok and by 8?", "and for 3?"]),
    ("Which language is this: 'Obrigado pela ajuda'?", ["and 'Dank je wel'?", "ok and 'Grazie mille'?"]),
    ("What's the weather like on Mars, in one line?", ["and on Venus?", "ok and Jupiter?"]),
    ("How do I spell 'necessary'?", ["and 'accommodate'?", "ok and 'rhythm'?"]),
    ("Write a short thank-you text to my neighbour for watering my plants.", ["make it warmer", "shorter please"]),
    ("What's the past tense of 'swim'?", ["and 'run'?", "ok and for 'bring'?"]),
    ("How many players are on a football team?", ["and basketball?", "ok and for rugby?"]),
    ("Round 3.14159 to two decimals.", ["and to one?", "ok and for 3 decimals?"]),
    ("Hey, what's a good snack before a run?", ["and after?", "something without nuts?"]),
    ("What's the currency of Japan?", ["and of Switzerland?", "ok and for Sweden?"]),
    ("Give me three words that rhyme with 'light'.", ["three more", "and with 'day'?"]),
    ("What is 12 squared?", ["ok and 13?", "and for 3?"]),
    ("Headline for: 'Local bakery wins national bread award'", ["another one", "make it punchier"]),
    ("Who painted the Mona Lisa?", ["and The Starry Night?", "ok and Guernica?"]),
    ("What's the speed of light, roughly?", ["in miles per second?", "ok and of sound?"]),
    ("Convert 5 kilometres to miles.", ["ok and 10?", "and for 3?"]),
    ("Is it 'affect' or 'effect' in 'the medicine had no ___'?", ["and 'it will ___ my mood'?", "thanks!"]),
    ("What's a haiku?", ["write one about snow", "and one about tea"]),
    ("How many continents are there?", ["name them", "ok and which is largest?"]),
    ("Tell me a joke about cats.", ["another one", "and about dogs?"]),
    ("What's 45 minus 17?", ["ok and minus 19?", "and for 3?"]),
    ("What's the longest river in Africa?", ["and in Europe?", "ok and South America?"]),
    ("Make this sentence shorter: 'At this point in time we are unable to process your request.'", ["even shorter", "and friendlier"]),
]

# Follow-ups that depend on the conversation: alone they read as small talk.
GENERIC_FOLLOWUPS = [
    "ok and for 3?", "and for n = 10?", "what about the second one?", "go on", "continue please",
    "why?", "can you explain that part again?", "and if it's negative?", "now do it for 5",
    "ok, and the other case?", "same thing but for 7", "more detail please", "and then?",
    "what if we double it?", "can you check your answer?", "hmm, are you sure?", "and the next step?",
    "what about edge cases?", "and in the general case?", "ok now the last part",
    "and for 2?", "what about when it's zero?", "shorter please but keep the reasoning",
    "and the opposite?", "ok and for 100?", "try again with 4", "so what's the final answer?",
    "what did you assume there?", "and if I change the first number to 9?", "keep going",
    "do the same for the other one", "and without that assumption?", "ok but why is that true?",
    "and for the rest?", "what happens at the boundary?", "wait, redo it for 6",
    "and in words?", "ok and 11?", "and the general formula?", "now for the case I mentioned",
]

# Fresh, self-contained simple questions asked after a hard conversation: the
# context is hard, the new turn is not.
TOPIC_SWITCH_SIMPLE = [
    "thanks! unrelated: what's the capital of Peru?", "cool. btw how do you say 'cheers' in Japanese?",
    "great, thanks. What's 9 times 6?", "nice. Different question: who wrote Hamlet?",
    "thank you! also, what's the plural of 'cactus'?", "ok thanks. What day of the week is it after Tuesday?",
    "perfect. quick one: how many grams in an ounce?", "thanks a lot, have a good day!",
    "got it. what's a synonym for 'quick'?", "thanks. Can you translate 'see you soon' into Spanish?",
    "cheers. is a whale a mammal?", "ok. totally different: what's the boiling point of water?",
    "thanks! what's the opposite of 'cheap'?", "great. how many hours are in a week?",
    "thank you so much, that's all for now", "awesome. which planet is closest to the sun?",
    "cool thanks. how do I spell 'separate'?", "nice, thanks. what's 25% of 200?",
    "ok, different topic: what's the currency of Mexico?", "thanks! who was the first person on the moon?",
    "great, one more thing: what's the chemical symbol for sodium?", "bye, thanks!",
    "thanks. Also: fix the typo in 'teh cat'", "lovely. What's the capital of Norway?",
    "thanks. what time zone is New York in?", "got it, thanks. How many sides does a hexagon have?",
    "ok great. rewrite 'pls send asap' politely", "thank you. what's 3 squared?",
]

# Fresh hard questions after a simple conversation: the new turn alone is hard.
TOPIC_SWITCH_HARD = [
    "thanks. Now something harder: prove that the square of an odd number is odd, and that n^2 - n is always even.",
    "cool. Can you also write a Python function that merges k sorted lists efficiently and explain its complexity?",
    "ok, different thing: design a URL shortener that handles 10k writes per second, with the data model and caching.",
    "thanks! Now estimate how many dentists work in Germany, showing your assumptions.",
    "great. What if electricity had never been harnessed? Think through how cities would look today.",
    "nice. Now write a detailed 1,200-word essay on why cities should fund public libraries.",
    "thanks. Also, why does my Python multiprocessing pool hang when the worker raises an exception? How do I debug it?",
    "ok. Compare Raft and Paxos for a small cluster and explain which is easier to get right.",
    "cool thanks. Solve: a rectangle's perimeter is 54 and its area is 170. Find its sides, with working.",
    "thanks. Plan a week of meals for a family of four with one vegetarian and a 120 euro budget, with a shopping list.",
    "got it. How many litres of paint would it take to paint every house in Amsterdam? Reason it out.",
    "great. Suppose the printing press had been invented in China 500 years earlier and spread west. What changes?",
    "thanks. Write a long, thoughtful letter to my future self about what I learned this decade.",
    "ok now a real one: implement Dijkstra's algorithm in Go with a heap and explain why it fails with negative edges.",
    "thanks! How should a small shop decide between raising prices 8% and cutting staff hours, given falling margins?",
    "great. Derive the formula for the sum of a geometric series and explain when it converges.",
    "ok. Analyse the strengths and weaknesses of proportional representation versus first-past-the-post.",
    "cool. Write a multi-chapter outline and the first chapter of a mystery novel set in a ski resort.",
    "thanks. Estimate the total length of all roads in France, explaining each assumption.",
    "nice, thanks. What would the world look like if antibiotics had never been discovered?",
]

ASSISTANT_HARD = [
    "Here is a worked answer. First, set up the problem carefully. Then each step follows from the previous one, and the result holds in general.",
    "Sure. The key idea is to break the problem into parts. Part 1 establishes the base case; part 2 handles the general step; together they give the result.",
    "Let's reason it through. I'll state the assumptions, derive the main quantity and check it against a sanity bound at the end.",
    "Good question. There are three main considerations, with trade-offs between them; below is a structured comparison and a recommendation.",
    "Here's an implementation with comments, followed by an explanation of its complexity and the edge cases it handles.",
]
ASSISTANT_SIMPLE = [
    "Sure!", "Here you go.", "Of course.", "That's right.", "Happy to help.", "No problem.",
]


def msg(role: str, content: str) -> dict:
    return {"role": role, "content": content}


def split(pool: list, held: bool) -> list:
    """The training three quarters of a pool, or the held-out last quarter."""
    cut = len(pool) - max(1, len(pool) // 4)
    return pool[cut:] if held else pool[:cut]


def conversations(rng: Random, held: bool) -> list[dict]:
    hard = split(HARD_OPENERS, held)
    simple = split(SIMPLE_OPENERS, held)
    generic = split(GENERIC_FOLLOWUPS, held)
    switch_simple = split(TOPIC_SWITCH_SIMPLE, held)
    switch_hard = split(TOPIC_SWITCH_HARD, held)
    rows = []

    def row(messages, label, category):
        rows.append({"messages": messages, "label": label, "source": MULTI, "category": category})

    def opener_turns(opener, assistant_pool, system):
        turns = [msg("system", system)] if system else []
        return turns + [msg("user", opener), msg("assistant", rng.choice(assistant_pool))]

    systems = ["", "", "", "You are a helpful assistant.", "Answer clearly."]
    for opener, own in hard:
        followups = own + rng.sample(generic, 3)
        for f in followups:
            row(opener_turns(opener, ASSISTANT_HARD, rng.choice(systems)) + [msg("user", f)], "complex", "followup-of-hard")
        for s in rng.sample(switch_simple, 2):
            row(opener_turns(opener, ASSISTANT_HARD, rng.choice(systems)) + [msg("user", s)], "simple", "switch-to-simple")
        # Three user turns: the hard question, a follow-up, another follow-up.
        a, b = rng.sample(followups, 2)
        row(opener_turns(opener, ASSISTANT_HARD, "") + [msg("user", a), msg("assistant", rng.choice(ASSISTANT_HARD)), msg("user", b)],
            "complex", "followup-of-hard")
    for opener, own in simple:
        followups = own + rng.sample(generic, 2)
        for f in followups:
            row(opener_turns(opener, ASSISTANT_SIMPLE, rng.choice(systems)) + [msg("user", f)], "simple", "followup-of-simple")
        s = rng.choice(switch_hard)
        row(opener_turns(opener, ASSISTANT_SIMPLE, rng.choice(systems)) + [msg("user", s)], "complex", "switch-to-hard")
        a, b = rng.sample(followups, 2)
        row(opener_turns(opener, ASSISTANT_SIMPLE, "") + [msg("user", a), msg("assistant", rng.choice(ASSISTANT_SIMPLE)), msg("user", b)],
            "simple", "followup-of-simple")
    # A follow-up with nothing before it refers to nothing: the small tier can
    # answer it or ask what is meant.
    # (The generic follow-ups and those of simple openers; a hard opener's own
    # follow-ups, such as "now make it thread-safe in Java", ask work alone.)
    for f in generic + [f for _, own in simple for f in own]:
        row([msg("user", f)], "simple", "followup-alone")
    # A hard question asked after a few simple turns (the last turn decides).
    for (s_open, s_own), h in zip(simple, rng.sample(switch_hard, len(switch_hard))):
        row(opener_turns(s_open, ASSISTANT_SIMPLE, "") + [msg("user", s_own[0]), msg("assistant", rng.choice(ASSISTANT_SIMPLE)), msg("user", h)],
            "complex", "switch-to-hard")
    return rows


# ---------------------------------------------------------------------------
# Weak spots: single prompts, written by hand in varied phrasings, with simple
# look-alikes so the words "essay", "what if" or "how many" do not decide alone.
# ---------------------------------------------------------------------------

LONG_WRITING = [
    "Write me a story.",
    "Tell me a long story about a dragon who is afraid of heights.",
    "Write an essay on friendship.",
    "Can you write something about the sea? As long and beautiful as you like.",
    "I'd love a piece of writing about growing up in a small town.",
    "Compose a speech for my sister's wedding, funny but touching, about five minutes long.",
    "Write a blog post about learning to cook as an adult.",
    "Draft the opening chapter of a fantasy novel.",
    "Write a eulogy for my grandfather, who was a carpenter and loved fishing.",
    "Produce a thorough article explaining the history of jazz for newcomers.",
    "write about autumn",
    "Give me a long poem about the city at night, several stanzas.",
    "Write a cover letter for a senior nursing position, drawing on ten years in intensive care.",
    "Write a children's bedtime story with a moral about sharing.",
    "Write a persuasive op-ed about why schools should start later in the morning.",
    "Please write a short novel-style scene where two old rivals meet again at a funeral.",
    "Write up a newsletter for our climbing club covering the season, the new wall and upcoming trips.",
    "Could you write a personal statement for a master's in urban planning?",
    "Write a reflective journal entry about failing an exam and what comes next.",
    "Write a script for a 10-minute play set in a broken elevator.",
    "Write an in-depth travel guide to Lisbon for a first-time visitor.",
    "Write a detailed product description and launch announcement for a reusable coffee cup.",
    "Tell me a story about a robot learning to paint, with a beginning, middle and end.",
    "Write a long letter from a soldier in 1916 to his mother.",
    "Write a motivational talk for a youth football team before a final.",
    "Create a fairy tale in the style of the Brothers Grimm about a clockmaker.",
    "Write the history of a fictional village over 300 years.",
    "Write an essay about what makes a good teacher.",
    "write a long-form piece about burnout in tech",
    "Write a sci-fi short story about the first town on Mars.",
    "Write a heartfelt retirement speech for a colleague of 30 years.",
    "Write a magazine feature on the revival of vinyl records.",
    "Write a 3-page mystery where the detective is a cat.",
    "Write song lyrics with verses and a chorus about leaving home.",
    "Write an essay reflecting on the meaning of home.",
    "Write a grant application narrative for a community garden.",
    "Write a detailed, emotional monologue for an actor playing a lighthouse keeper.",
    "Write a series of diary entries from a sailor on a 19th-century whaling ship.",
    "I want an epic poem about the founding of a city.",
    "Write a long story for my kids about a family of hedgehogs preparing for winter.",
]
LONG_WRITING_SIMPLE = [
    "Write a haiku about rain.", "Give me a one-line slogan for a bakery.", "Write a two-line birthday message for my aunt.",
    "Write a tweet announcing our new opening hours.", "Write a short caption for a beach photo.",
    "Suggest a title for my essay on friendship.", "Write one sentence about autumn.",
    "Write a short text telling my boss I'm sick today.", "Give me a rhyme for 'moon'.",
    "Write a two-sentence horror story.", "Write a short thank-you note for a gift.",
    "Write a catchy name for a podcast about gardening.", "Write a one-line toast for a wedding.",
    "Write a short out-of-office reply.", "Write a limerick about a cat.",
    "Give me a short motto for a running club.", "Write a short reminder message about tomorrow's meeting.",
    "Write a one-sentence bio for a photographer.", "Write a short apology text for being late.",
    "Write a fortune-cookie message.", "Write a short greeting card message for Christmas.",
    "Write a short product name for a reusable coffee cup.", "Write a tagline for a bookshop.",
    "Write a two-line poem about coffee.",
]

COUNTERFACTUAL = [
    "What if Rome never fell?",
    "What would have happened if the Library of Alexandria had survived?",
    "Imagine the Black Death never happened. How would Europe be different?",
    "Suppose humans could photosynthesise. What would society look like?",
    "What if the South had won the American Civil War?",
    "If the steam engine had been invented in ancient Greece, how would history have changed?",
    "What would the world be like if nobody had invented the wheel?",
    "What if Napoleon had won at Waterloo?",
    "Imagine there had never been a Cold War. What would technology look like now?",
    "If the Earth had no moon, how would life have evolved?",
    "What if the Spanish Armada had succeeded in 1588?",
    "Suppose the internet went down worldwide for a year. What happens?",
    "What if Alexander the Great had lived to 70?",
    "How would science differ if Newton had never lived?",
    "What if women had had the vote everywhere from 1800?",
    "If oil had never been discovered, how would the 20th century have gone?",
    "What would happen if everyone on Earth spoke the same language?",
    "What if the Aztecs had defeated Cortés?",
    "Suppose gravity were 10% weaker. What would change on Earth?",
    "What if the Titanic hadn't sunk -- would anything important be different?",
    "If the Soviet Union had landed on the Moon first, what then?",
    "What if money had never been invented?",
    "Imagine the Industrial Revolution had started in India. Think it through.",
    "What if humans lived to 300? What would happen to careers, families and politics?",
    "Had the Mongols conquered Western Europe, what would be different today?",
    "What if the Ottoman Empire had survived the First World War?",
    "what if computers had been invented in the 1800s",
    "Suppose there had been no Reformation. How would Europe look?",
    "What would happen to the economy if nobody had to work?",
    "What if the dinosaurs were still around today?",
    "What if Germany had never been unified in 1871?",
    "What if we had discovered penicillin 200 years earlier?",
]
COUNTERFACTUAL_SIMPLE = [
    "What if I miss my train, can I use my ticket on the next one?", "What happens if I leave milk out overnight?",
    "When did Rome fall?", "Who was Napoleon?", "What year did the Titanic sink?", "When did the Black Death happen?",
    "What if it rains tomorrow, should I bring an umbrella?", "Who invented the wheel?",
    "Who won the battle of Waterloo?", "What does 'counterfactual' mean?", "When was the internet invented?",
    "What's the capital of the old Aztec empire?", "Who was Alexander the Great's teacher?",
    "What if I forget my password? Where do I reset it?", "What year did the Soviet Union collapse?",
    "How long did the Roman Empire last?", "Who discovered penicillin?", "When did the Cold War end?",
    "What happens if I press Ctrl+Z?", "What if I water my cactus every day, is that too much?",
    "Who led the Spanish Armada?", "When was the steam engine invented?",
]

FERMI = [
    "How many piano tuners are there in Chicago?",
    "Estimate how many golf balls fit in a football stadium.",
    "How many hairs are on a human head, roughly? Work it out.",
    "About how many litres of coffee are drunk in Paris each day?",
    "How many windows are there in Manhattan?",
    "Roughly how many words does a person speak in a lifetime?",
    "Estimate the number of smartphones sold in Brazil in a year.",
    "How many grains of sand are on a typical beach?",
    "How much would it cost to repaint every school in the UK?",
    "How many trees would you need to offset one person's yearly emissions?",
    "How many pizzas are eaten in the US every day? Give an estimate with reasoning.",
    "Estimate how many dogs live in London.",
    "How many heartbeats does a person have in a lifetime?",
    "How many ping-pong balls would fill this room, assuming a normal living room?",
    "Back-of-the-envelope: how much electricity do all the world's data centres use?",
    "How many taxis are there in New York?",
    "How many books are in all the libraries of France?",
    "Estimate the weight of all the ants on Earth compared to all humans.",
    "How many bicycles are in Amsterdam, and how many are stolen each year?",
    "How many tennis balls are used at Wimbledon each year? Reason it out.",
    "Roughly how many emails are sent worldwide every second?",
    "How many people are in the air on planes right now?",
    "Estimate the number of hair salons in Berlin.",
    "How long would it take to count to a billion out loud?",
    "How many times does a typical car's wheel turn in its lifetime?",
    "Estimate how much pasta Italy eats in a year.",
    "How many teachers are there in India? Show your estimate.",
    "How many cups of tea are drunk in the UK each day?",
    "how many elevators are in hong kong",
    "Estimate the total mass of all the cars in Germany.",
    "How many Lego bricks would it take to build a life-size house?",
    "How many calories does a marathon field of 40,000 runners burn in total?",
]
FERMI_SIMPLE = [
    "How many people live in Chicago?", "How many days are in a year?", "How many legs does a dog have?",
    "How many minutes are in an hour?", "How many planets are in the solar system?", "How many players on a tennis court in doubles?",
    "How many strings does a guitar have?", "How many keys does a piano have?", "How many states are in the US?",
    "How many bones are in the human body?", "How many centimetres are in a metre?", "How many eggs in a dozen?",
    "How many countries are in the EU?", "How many hours in a day?", "How many sides does a triangle have?",
    "What's the population of London?", "How many seconds in a minute?", "How many weeks in a year?",
    "How many wheels does a bicycle have?", "How many letters are in the English alphabet?",
    "How tall is the Eiffel Tower?", "How many Oscars did Titanic win?",
]


# Composed weak-spot prompts: frames x subjects, each list split into a
# training and a held-out part, so held-out rows pair an unseen frame with an
# unseen subject.

WRITING_FORMS = ["essay", "short story", "blog post", "speech", "magazine article", "letter", "long poem",
                 "opening chapter", "op-ed", "personal essay", "fairy tale", "screenplay scene", "feature story",
                 "memoir chapter", "newsletter", "sermon", "ballad", "travelogue", "monologue", "novella outline and first chapter"]
WRITING_TOPICS = ["the last day of summer", "a city that never sleeps", "my grandmother's kitchen", "the first time I saw snow",
                  "a robot who wants to be a gardener", "climate anxiety", "moving to a new country", "the history of tea",
                  "friendship across generations", "a lighthouse in a storm", "learning to fail", "a market in Marrakesh",
                  "why we tell stories", "a detective who is afraid of the dark", "the smell of rain", "small-town football",
                  "the ethics of eating meat", "the joy of public libraries", "a family road trip gone wrong",
                  "the sea as a character", "a world without music", "an immigrant's first winter", "the quiet hours of a night nurse",
                  "the rise and fall of a rock band", "life on a space station", "the meaning of home", "a chess prodigy",
                  "the last bookshop in town", "a garden through four seasons", "the courage of ordinary people",
                  "a letter to my younger self", "what cities owe their rivers"]
WRITING_FRAMES = ["Write a {form} about {topic}.", "Can you write me a {form} about {topic}?",
                  "I need a {form} on {topic} for my writing class.", "Please write a {form} exploring {topic}.",
                  "write a {form} about {topic}", "Compose a {form} on the theme of {topic}.",
                  "Could you draft a {form} about {topic}? Take your time with it.",
                  "I'd love a {form} about {topic}, rich in detail.", "Give me a {form} about {topic}.",
                  "Write a moving {form} about {topic}.", "Create an original {form} about {topic}.",
                  "Let's do some creative writing: a {form} about {topic}."]
SHORT_FORMS = ["haiku", "one-line caption", "tagline", "title", "two-line rhyme", "tweet", "slogan",
               "short text message", "one-sentence summary", "hashtag", "limerick", "greeting card line"]

CF_EVENTS = ["the Roman Empire had never fallen", "the printing press had never been invented",
             "Columbus had never reached the Americas", "the Wright brothers had failed", "Germany had won the First World War",
             "the Library of Alexandria had survived", "the Cuban missile crisis had turned into war",
             "humans had never domesticated dogs", "the Industrial Revolution had begun in China",
             "electricity had never been harnessed", "Einstein had never published relativity", "the dinosaurs had survived",
             "the Apollo programme had been cancelled", "Alan Turing had lived to 80", "the euro had never been created",
             "smartphones had never been invented", "the Suez Canal had never been built", "Japan had never opened to trade in the 1850s",
             "the Byzantine Empire had held Constantinople", "the Black Death had killed twice as many people",
             "the United States had stayed a British colony", "coal had never been discovered",
             "the Soviet Union had never collapsed", "writing had been invented only in 1500",
             "Carthage had defeated Rome", "the Manhattan Project had failed", "vaccines had never been developed",
             "the Mayan cities had never been abandoned", "the Vikings had settled North America for good",
             "the transistor had been invented in 1900"]
CF_FRAMES = ["What if {e}?", "What would the world look like if {e}?", "Imagine {e}. How would history have unfolded?",
             "Suppose {e}. What would be different today?", "How would everyday life be different if {e}?",
             "Counterfactual question: what if {e}? Walk me through the consequences.",
             "Think it through: what if {e}?", "What would have happened if {e}?",
             "If {e}, how would science and politics have developed?", "what if {e}",
             "Play out an alternate history where {e}.", "Would we be better or worse off if {e}?"]
FACT_QUESTIONS = ["When did the Roman Empire fall?", "Who invented the printing press?", "What year did Columbus reach the Americas?",
                  "Who were the Wright brothers?", "When did the First World War end?", "Where was the Library of Alexandria?",
                  "What year was the Cuban missile crisis?", "When were dogs domesticated?", "Where did the Industrial Revolution begin?",
                  "Who discovered electricity?", "What year did Einstein publish special relativity?", "When did the dinosaurs die out?",
                  "When did Apollo 11 land?", "Who was Alan Turing?", "When was the euro introduced?", "When was the first iPhone released?",
                  "When did the Suez Canal open?", "Who was the first emperor of Japan?", "When did Constantinople fall?",
                  "What was the Black Death?", "When did the US declare independence?", "What is coal made of?",
                  "When did the Soviet Union collapse?", "Where was writing invented?", "Where was Carthage?",
                  "What was the Manhattan Project?", "Who made the first vaccine?", "Where did the Maya live?",
                  "Who was Leif Erikson?", "Who invented the transistor?"]

FERMI_THINGS = ["piano tuners", "dentists", "hair salons", "petrol stations", "wedding photographers", "school buses",
                "traffic lights", "coffee shops", "vets", "lifts", "public swimming pools", "taxis", "plumbers", "bakeries",
                "tennis courts", "window cleaners", "dog walkers", "driving instructors", "bicycle repair shops", "florists",
                "locksmiths", "yoga studios", "street lamps", "pharmacies"]
FERMI_PLACES = ["Chicago", "Berlin", "Tokyo", "Lagos", "São Paulo", "Toronto", "a city of two million people", "Sydney",
                "Mumbai", "Madrid", "Manchester", "Seoul", "Nairobi", "Warsaw", "Denver", "the Netherlands", "Scotland", "Vienna"]
FERMI_FRAMES = ["How many {q} are there in {p}?", "Estimate the number of {q} in {p}.",
                "Roughly how many {q} does {p} have? Reason it out.", "Back-of-the-envelope: how many {q} in {p}?",
                "Give me a Fermi estimate of how many {q} work in {p}.", "How many {q} do you think {p} needs?",
                "how many {q} in {p}", "Without looking it up, estimate how many {q} there are in {p}.",
                "Guess the number of {q} in {p} and explain your assumptions.", "What's a reasonable estimate for the number of {q} in {p}?",
                "Can you estimate how many {q} operate in {p}?", "Interview question: how many {q} are in {p}?"]
PLACE_FACTS = ["How many people live in {p}?", "What country is {p} in?", "What's the population of {p}?",
               "What time zone is {p} in?", "What language do they speak in {p}?", "How do you spell {p}?"]


def composed(held: bool, rng: Random) -> list[dict]:
    rows = []

    def add(text, label, category):
        text = re.sub(r"\b([Aa]) (?!one)([aeiou])", r"\1n \2", text)  # "a essay" -> "an essay"
        rows.append({"text": text, "label": label, "source": WEAK, "category": category})

    forms, topics, frames = split(WRITING_FORMS, held), split(WRITING_TOPICS, held), split(WRITING_FRAMES, held)
    n = 40 if held else 160
    for _ in range(n):
        add(rng.choice(frames).format(form=rng.choice(forms), topic=rng.choice(topics)), "complex", "long-writing")
    shorts = split(SHORT_FORMS, held)
    for _ in range(n // 2):
        add(rng.choice(frames).format(form=rng.choice(shorts), topic=rng.choice(topics)), "simple", "long-writing-lookalike")
    events, cf_frames = split(CF_EVENTS, held), split(CF_FRAMES, held)
    for _ in range(n):
        add(rng.choice(cf_frames).format(e=rng.choice(events)), "complex", "counterfactual")
    for q in split(FACT_QUESTIONS, held):
        add(q, "simple", "counterfactual-lookalike")
    things, places, f_frames = split(FERMI_THINGS, held), split(FERMI_PLACES, held), split(FERMI_FRAMES, held)
    for _ in range(n):
        add(rng.choice(f_frames).format(q=rng.choice(things), p=rng.choice(places)), "complex", "fermi")
    facts = split(PLACE_FACTS, held)
    for _ in range(n // 3):
        add(rng.choice(facts).format(p=rng.choice(places)), "simple", "fermi-lookalike")
    return rows


def weak_spots(held: bool) -> list[dict]:
    rows = []
    for pool, label, category in [
        (LONG_WRITING, "complex", "long-writing"),
        (LONG_WRITING_SIMPLE, "simple", "long-writing-lookalike"),
        (COUNTERFACTUAL, "complex", "counterfactual"),
        (COUNTERFACTUAL_SIMPLE, "simple", "counterfactual-lookalike"),
        (FERMI, "complex", "fermi"),
        (FERMI_SIMPLE, "simple", "fermi-lookalike"),
    ]:
        for text in split(pool, held):
            rows.append({"text": text, "label": label, "source": WEAK, "category": category})
    return rows


def build(held: bool) -> list[dict]:
    rng = Random(int(hashlib.sha256(f"{SEED}:{held}".encode()).hexdigest()[:16], 16))
    rows = conversations(rng, held) + weak_spots(held) + composed(held, rng)
    seen, unique = set(), []
    for r in rows:
        key = json.dumps(r, sort_keys=True)
        if key not in seen:
            seen.add(key)
            unique.append(r)
    unique.sort(key=lambda r: json.dumps(r, sort_keys=True))
    rng.shuffle(unique)
    return unique


def write(path: str, rows: list[dict]) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--markdown", action="store_true", help="print the category table")
    args = ap.parse_args()
    for path, held in [(OUT_TRAIN, False), (OUT_HELD, True)]:
        rows = build(held)
        write(path, rows)
        counts = Counter((r["source"], r["category"], r["label"]) for r in rows)
        print(f"{os.path.relpath(path, ROOT)}: {len(rows)} rows")
        if args.markdown:
            print("\n| source | category | label | rows |\n|---|---|---|---:|")
            for (s, c, l), n in sorted(counts.items()):
                print(f"| `{s}` | `{c}` | {l} | {n} |")
            print()


if __name__ == "__main__":
    main()
