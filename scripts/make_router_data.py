#!/usr/bin/env python3
"""Generate synthetic, original training prompts for Harpoon's prompt router.

Writes ``data/router/extra.jsonl`` (one JSON object per line with the same schema as
``shared/data/router/train.jsonl``)::

    {"text": str, "label": "simple"|"complex", "source": "harpoon-synthetic", "category": str}

The file fills the gaps documented in ``shared/data/router/README.md``: instruction-style
simple tasks (summarise, extract, classify, fix, translate, rewrite, ...), everyday
questions written with normal casing and punctuation, long-but-simple prompts, and on the
complex side proofs, logic puzzles, non-trivial code, system design, long structured
writing, analysis and planning, including short one-line complex prompts.

Every template and content pool below was written for this project. Nothing is copied
from a benchmark. Python 3.11 standard library only, no network, deterministic:

    python3 scripts/make_router_data.py            # writes data/router/extra.jsonl
    python3 scripts/make_router_data.py --out X    # writes somewhere else

Two runs produce byte-identical output (fixed seed, no set iteration, sorted then
shuffled with a seeded RNG).
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import math
import os
import sys
import time
from collections import Counter
from random import Random

SEED = 20261124
SOURCE = "harpoon-synthetic"
MAX_CHARS = 4000
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(ROOT, "data", "router", "extra.jsonl")
TRAIN_CANDIDATES = [
    os.environ.get("HARPOON_ROUTER_TRAIN", ""),
    os.path.join(ROOT, "shared", "data", "router", "train.jsonl"),
    "/work/shared/data/router/train.jsonl",
]


# ---------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------

def norm(text: str) -> str:
    return " ".join(text.lower().split())


def ch(rng: Random, seq):
    return seq[rng.randrange(len(seq))]


def cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def join_and(items, conj="and", oxford=False):
    items = list(items)
    if len(items) == 1:
        return items[0]
    if len(items) == 2:
        return f"{items[0]} {conj} {items[1]}"
    comma = "," if oxford else ""
    return ", ".join(items[:-1]) + f"{comma} {conj} " + items[-1]


def sample(rng: Random, seq, k):
    return rng.sample(list(seq), k)


def art(n) -> str:
    """Indefinite article for a number written in digits ("an 8-day", "a 7-day")."""
    s = str(n)
    return "an" if s.startswith("8") or s in ("11", "18") else "a"


def word_count(text: str) -> int:
    return len(text.split())


# ---------------------------------------------------------------------------
# shared content pools (all invented for this project)
# ---------------------------------------------------------------------------

FIRST = [
    "Amara", "Ben", "Chloe", "Dmitri", "Elena", "Farah", "Gabriel", "Hana", "Ibrahim",
    "Julia", "Kenji", "Lucia", "Mateo", "Nadia", "Oliver", "Priya", "Quentin", "Rosa",
    "Samuel", "Tariq", "Uma", "Victor", "Wen", "Ximena", "Yusuf", "Zoe", "Aisha", "Bruno",
    "Carmen", "David", "Esther", "Felix", "Grace", "Hugo", "Ingrid", "Jamal", "Kofi",
    "Leila", "Marco", "Nina", "Omar", "Paula", "Rafael", "Sofia", "Tom", "Valentina",
    "William", "Yara", "Andrei", "Beatriz", "Chen", "Diego", "Eun-ji", "Fatima", "Gustav",
    "Hiroshi", "Isla", "Jonas", "Kavya", "Liam", "Maya", "Nikhil", "Olga", "Pedro", "Rhea",
    "Stefan", "Tendai", "Ursula", "Vikram", "Wanjiru", "Alice", "Bilal", "Clara", "Emeka",
    "Freya", "Gideon", "Helena", "Ivan", "Jasmine", "Karim", "Lena", "Malik", "Noor",
]
LAST = [
    "Okafor", "Lindqvist", "Moreau", "Tanaka", "Haddad", "Novak", "Fernandes", "Kowalski",
    "Mensah", "O'Brien", "Petrov", "Rossi", "Schmidt", "Silva", "Nakamura", "Andersen",
    "Brennan", "Castillo", "Dubois", "Eriksen", "Gallagher", "Hoffmann", "Ibarra", "Jensen",
    "Kaur", "Larsen", "Mwangi", "Nguyen", "Ortega", "Patel", "Quinn", "Ramirez", "Sato",
    "Tremblay", "Usman", "Varga", "Walsh", "Yilmaz", "Zhang", "Abbott", "Baptiste", "Costa",
    "Delgado", "Fischer", "Greene", "Hartley", "Iyer", "Kim", "Lopez", "Morgan", "Osei",
]
CITIES = [
    ("Lisbon", "Portugal"), ("Porto", "Portugal"), ("Valencia", "Spain"), ("Seville", "Spain"),
    ("Lyon", "France"), ("Marseille", "France"), ("Leipzig", "Germany"), ("Hamburg", "Germany"),
    ("Bologna", "Italy"), ("Turin", "Italy"), ("Ghent", "Belgium"), ("Utrecht", "the Netherlands"),
    ("Gothenburg", "Sweden"), ("Bergen", "Norway"), ("Aarhus", "Denmark"), ("Tampere", "Finland"),
    ("Krakow", "Poland"), ("Brno", "the Czech Republic"), ("Graz", "Austria"), ("Cork", "Ireland"),
    ("Leeds", "the UK"), ("Bristol", "the UK"), ("Glasgow", "the UK"), ("Halifax", "Canada"),
    ("Calgary", "Canada"), ("Portland", "the US"), ("Austin", "the US"), ("Pittsburgh", "the US"),
    ("Denver", "the US"), ("Savannah", "the US"), ("Monterrey", "Mexico"), ("Medellin", "Colombia"),
    ("Cordoba", "Argentina"), ("Valparaiso", "Chile"), ("Curitiba", "Brazil"), ("Nairobi", "Kenya"),
    ("Accra", "Ghana"), ("Kigali", "Rwanda"), ("Cape Town", "South Africa"), ("Marrakesh", "Morocco"),
    ("Izmir", "Turkey"), ("Pune", "India"), ("Kochi", "India"), ("Osaka", "Japan"),
    ("Fukuoka", "Japan"), ("Busan", "South Korea"), ("Da Nang", "Vietnam"), ("Chiang Mai", "Thailand"),
    ("Penang", "Malaysia"), ("Wellington", "New Zealand"), ("Adelaide", "Australia"),
    ("Hobart", "Australia"),
]
COMPANIES = [
    "Brightwave Analytics", "Northfield Foods", "Cobalt Logistics", "Lumen Health",
    "Tidepool Software", "Redwood Outfitters", "Harbor & Finch", "Quillstone Press",
    "Aster Robotics", "Greenleaf Energy", "Pinecrest Credit Union", "Orbital Coffee Co.",
    "Maple Street Books", "Silverline Transit", "Kestrel Games", "Juniper Labs",
    "Bluebird Bakery", "Summit Mutual", "Copperpot Kitchens", "Nimbus Cloud Services",
    "Fernway Gardens", "Ironbridge Engineering", "Sable Fashion House", "Driftwood Hotels",
    "Marigold Pharmacy", "Vantage Bikes", "Helix Biotech", "Wildflower Yoga Studio",
    "Granite Peak Outdoors", "Polaris Telecom", "Saffron Table", "Lighthouse Tutoring",
]
INDUSTRIES = [
    "software", "logistics", "food", "renewable energy", "retail", "publishing", "healthcare",
    "gaming", "robotics", "hospitality", "banking", "telecoms", "fashion", "biotech",
]
MONTHS = [
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
DOMAINS = ["example.com", "mail.example.org", "example.net", "corp.example", "studio.example"]
LANGUAGES = [
    "French", "Spanish", "German", "Italian", "Portuguese", "Dutch", "Swedish", "Polish",
    "Turkish", "Japanese", "Korean", "Mandarin Chinese", "Hindi", "Arabic", "Greek",
    "Russian", "Indonesian", "Vietnamese", "Norwegian", "Czech", "Swahili", "Danish",
]


def person(rng):
    return f"{ch(rng, FIRST)} {ch(rng, LAST)}"


def rand_date(rng, with_year=None):
    m = rng.randrange(12)
    d = rng.randint(1, 28)
    y = rng.randint(2019, 2027)
    if with_year is None:
        with_year = rng.random() < 0.45
    style = rng.randrange(5)
    if not with_year:
        return ch(rng, [f"{MONTHS[m]} {d}", f"{d} {MONTHS[m]}", f"{WEEKDAYS[rng.randrange(7)]}, {MONTHS[m]} {d}"])
    if style == 0:
        return f"{MONTHS[m]} {d}, {y}"
    if style == 1:
        return f"{d} {MONTHS[m]} {y}"
    if style == 2:
        return f"{y}-{m + 1:02d}-{d:02d}"
    if style == 3:
        return f"{d}/{m + 1}/{y}"
    return f"{MONTHS[m][:3]} {d} {y}"


def rand_time(rng):
    h = rng.randint(7, 20)
    mm = ch(rng, ["00", "15", "30", "45", "00", "30"])
    style = rng.randrange(3)
    if style == 0:
        return f"{h}:{mm}"
    suffix = "am" if h < 12 else "pm"
    h12 = h if h <= 12 else h - 12
    if style == 1:
        return f"{h12}:{mm} {suffix}" if mm != "00" else f"{h12} {suffix}"
    return f"{h12}:{mm} {suffix.replace('am', 'a.m.').replace('pm', 'p.m.')}"


def rand_price(rng, lo=5, hi=400):
    cur = ch(rng, ["$", "$", "€", "£", "$"])
    amount = rng.randint(lo, hi)
    if rng.random() < 0.4:
        return f"{cur}{amount}.{ch(rng, ['99', '50', '95', '00', '49'])}"
    if amount >= 1000:
        return f"{cur}{amount:,}"
    return f"{cur}{amount}"


def rand_email(rng, name=None):
    if name is None:
        name = person(rng)
    first, last = name.split(" ", 1)
    local = ch(rng, [
        f"{first}.{last}", f"{first[0]}{last}", f"{first}{rng.randint(1, 99)}", f"{first}_{last[:3]}",
        "info", "bookings", "hello", "support",
    ]).lower().replace("'", "").replace(" ", "")
    return f"{local}@{ch(rng, DOMAINS)}"


def rand_phone(rng):
    style = rng.randrange(5)
    if style == 0:
        return f"(555) 01{rng.randint(0, 9)}-{rng.randint(1000, 9999)}"
    if style == 1:
        return f"+1 555-01{rng.randint(10, 99)}"
    if style == 2:
        return f"020 7946 0{rng.randint(100, 999)}"
    if style == 3:
        return f"+44 7700 900{rng.randint(100, 999)}"
    return f"555-{rng.randint(100, 999)}-{rng.randint(1000, 9999)}"


# ---------------------------------------------------------------------------
# passage builders: short texts with known facts, so instructions can ask about them
# ---------------------------------------------------------------------------

EVENTS = [
    "a spring book fair", "a charity fun run", "a free coding workshop", "a jazz night",
    "an open day", "a community clean-up", "a street food festival", "a photography exhibition",
    "a board game marathon", "a plant swap", "a careers fair", "a film screening",
    "a beginners' pottery class", "a farmers' market", "a science fair for kids",
    "a vintage clothing sale", "a poetry reading", "a chess tournament", "a repair café",
    "a wine tasting evening", "a salsa dance class", "a public lecture on sleep",
]
VENUES = [
    "the public library", "the old town hall", "Riverside Park", "the community centre",
    "St Mary's church hall", "the university atrium", "Harbour Square", "the Granary building",
    "the botanical garden", "the sports centre on Elm Road", "the museum courtyard",
]
ORGS = [
    "The Friends of the Library", "The local Rotary club", "Our neighbourhood association",
    "The city arts council", "A group of volunteers", "The student union", "The parents' committee",
    "The Green Streets project", "The historical society",
]
QUOTES = [
    "she hopes to double last year's turnout", "it is a chance for neighbours to meet",
    "everyone is welcome, whatever their experience", "the money raised will go to the food bank",
    "they have been planning it since the winter", "places are limited, so people should book early",
    "it will be fully accessible for wheelchair users", "children under twelve get in free",
]
COUNCIL_ACTIONS = [
    "build a new cycle lane along the river", "extend the opening hours of the central library",
    "replace the street lights with LED lamps", "turn an empty car park into a small park",
    "introduce a low-emission zone in the centre", "renovate the public swimming pool",
    "plant two thousand trees over the next three years", "add a night bus route to the airport",
    "repair the footbridge over the canal", "open a second recycling centre",
    "pedestrianise the market street on weekends", "fund free school breakfasts",
]
CORP_ACTIONS = [
    "open a new office in {city2}", "cut prices on its most popular products",
    "hire around {n} new staff by the end of the year", "move to a four-day working week",
    "recall a batch of faulty chargers", "launch a subscription service",
    "close two of its older warehouses", "switch its delivery vans to electric vehicles",
    "partner with a local university on research", "stop selling single-use plastic bags",
    "delay its new product until next spring", "raise wages for its warehouse workers",
]
CORP_BENEFITS = [
    "help the company reach new customers", "make deliveries faster", "save money in the long run",
    "improve staff wellbeing", "reduce its carbon footprint", "keep customers safe",
]
PRODUCTS = [
    ("wireless earbuds", "audio"), ("standing desk", "furniture"), ("air fryer", "kitchen"),
    ("robot vacuum", "home"), ("electric toothbrush", "personal care"), ("hiking backpack", "outdoor"),
    ("smart thermostat", "home"), ("mechanical keyboard", "computer"), ("yoga mat", "fitness"),
    ("coffee grinder", "kitchen"), ("e-reader", "electronics"), ("rain jacket", "clothing"),
    ("office chair", "furniture"), ("portable speaker", "audio"), ("blender", "kitchen"),
    ("fitness tracker", "wearable"), ("desk lamp", "lighting"), ("baby monitor", "home"),
    ("running shoes", "footwear"), ("cast iron pan", "kitchen"), ("webcam", "computer"),
    ("electric kettle", "kitchen"), ("phone case", "accessories"), ("tent", "outdoor"),
]
BRANDS = ["Novo", "Kiteline", "Bramble", "Axon", "Halcyon", "Peakform", "Lumo", "Corvid", "Tessa", "Oakbridge"]
PRODUCT_FEATURES = [
    "charges fully in about two hours", "folds flat for storage", "has a five-year warranty",
    "weighs less than a kilogram", "is made from recycled materials", "works with most phones",
    "is easy to clean", "has three speed settings", "runs quietly", "comes with a travel case",
    "is water resistant", "has an adjustable height", "lasts up to a week on one charge",
    "includes a spare filter", "can be controlled from an app", "is dishwasher safe",
]
COLOURS = ["black", "white", "grey", "navy", "sage green", "red", "sand", "charcoal", "blue"]
DISHES = [
    "grilled sardines", "a bowl of ramen", "fresh tacos", "mushroom risotto", "a lamb tagine",
    "street-side dumplings", "a seafood paella", "a spicy curry", "wood-fired pizza", "pho",
]
SIGHTS = [
    "the old cathedral", "the castle on the hill", "the covered market", "the harbour",
    "the botanical gardens", "the modern art museum", "the old city walls", "a hilltop viewpoint",
    "the river promenade", "the science museum", "a famous bookshop", "the central square",
]
TEAMS = ["marketing", "platform", "finance", "design", "sales", "support", "data", "operations", "HR"]
PROJECTS = [
    "the website redesign", "the new onboarding flow", "the office move", "the Q3 campaign",
    "the customer survey", "the mobile app launch", "the hiring drive", "the billing migration",
]
MEETING_TASKS = [
    "send the draft budget", "book the venue", "update the roadmap", "interview the two candidates",
    "finish the user survey", "review the contract", "prepare the slides", "fix the login bug",
    "order new laptops", "write the press release", "collect feedback from the pilot users",
]
MEETING_STATUS = [
    "sign-ups are up twelve percent on last month", "the supplier has delayed the shipment",
    "the pilot went well overall", "two people are leaving the team in the spring",
    "the test results look promising", "costs are slightly over budget",
]


def passage_event(rng):
    ev = ch(rng, EVENTS)
    venue = ch(rng, VENUES)
    city, country = ch(rng, CITIES)
    date = rand_date(rng)
    t = rand_time(rng)
    price = rand_price(rng, 3, 40)
    org = ch(rng, ORGS)
    name = person(rng)
    email = rand_email(rng, name)
    phone = rand_phone(rng)
    parts = [
        f"{org} is holding {ev} on {date} at {venue} in {city}.",
        ch(rng, [f"Doors open at {t}.", f"It starts at {t}.", f"Things get going at {t}."]),
        ch(rng, [f"Tickets cost {price}.", f"Entry is {price} per person.", "Entry is free.",
                 f"Tickets are {price}, or half price for students."]),
        f"{name}, who is organising it, says {ch(rng, QUOTES)}.",
        ch(rng, [f"To book, email {email}.", f"Questions can go to {email} or {phone}.",
                 f"For details call {phone}."]),
    ]
    keep = [parts[0]] + [p for p in parts[1:] if rng.random() < 0.8]
    text = " ".join(keep)
    facts = {"names": [name] if name in text else [], "dates": [date], "places": [venue, city],
             "emails": [email] if email in text else [], "phones": [phone] if phone in text else [],
             "prices": [price] if price in text else [], "orgs": [], "topic": "event"}
    return text, facts


def passage_council(rng):
    city, country = ch(rng, CITIES)
    date = rand_date(rng)
    a = rng.randint(6, 14)
    b = rng.randint(1, a - 1)
    action = ch(rng, COUNCIL_ACTIONS)
    cost = ch(rng, [f"{rng.randint(2, 95)} million {ch(rng, ['dollars', 'euros', 'pounds'])}",
                    f"${rng.randint(120, 990)},000", f"€{rng.randint(1, 30)}.{rng.randint(1, 9)} million"])
    name = person(rng)
    month = ch(rng, MONTHS)
    months = rng.randint(3, 30)
    parts = [
        f"On {date}, {city}'s city council voted {a} to {b} to {action}.",
        f"The plan will cost about {cost}.",
        f"It was proposed by councillor {name}, who said it was {ch(rng, ['long overdue', 'good value', 'what residents asked for', 'a first step'])}.",
        f"Work is expected to start in {month} and take roughly {months} months.",
        ch(rng, ["Some shop owners worry about disruption during construction.",
                 "Opposition members said the money should go to housing instead.",
                 "A public consultation will run for six weeks.",
                 "Local schools have welcomed the decision."]),
    ]
    keep = [parts[0]] + [p for p in parts[1:] if rng.random() < 0.8]
    text = " ".join(keep)
    facts = {"names": [name] if name in text else [], "dates": [date] + ([month] if month in text else []),
             "places": [city], "emails": [], "phones": [], "prices": [cost] if cost in text else [],
             "orgs": [f"{city} city council"], "topic": "local politics"}
    return text, facts


def passage_company(rng):
    co = ch(rng, COMPANIES)
    ind = ch(rng, INDUSTRIES)
    city, country = ch(rng, CITIES)
    city2, _ = ch(rng, CITIES)
    n = rng.randint(2, 40) * 10
    action = ch(rng, CORP_ACTIONS).format(city2=city2, n=n)
    ceo = person(rng)
    staff = rng.randint(3, 90) * 10
    rev = ch(rng, [f"${rng.randint(2, 90)} million", f"€{rng.randint(5, 400)} million", f"£{rng.randint(1, 40)}.{rng.randint(1, 9)} million"])
    day = ch(rng, WEEKDAYS[:5])
    parts = [
        f"{co}, a {ind} company based in {city}, said on {day} that it will {action}.",
        f"Chief executive {ceo} said the change would {ch(rng, CORP_BENEFITS)}.",
        f"The firm employs about {staff} people and reported revenue of {rev} last year.",
        ch(rng, ["Its shares rose slightly after the news.", "Unions said they would study the details.",
                 "Analysts called the move sensible.", "Customers will not see any change before the summer."]),
    ]
    keep = [parts[0]] + [p for p in parts[1:] if rng.random() < 0.8]
    text = " ".join(keep)
    facts = {"names": [ceo] if ceo in text else [], "dates": [day], "places": [city] + ([city2] if city2 in text else []),
             "emails": [], "phones": [], "prices": [rev] if rev in text else [], "orgs": [co], "topic": "business"}
    return text, facts


def passage_email(rng):
    to = ch(rng, FIRST)
    frm = person(rng)
    thing = ch(rng, ["your quick reply", "the notes from yesterday", "sending the photos", "the lovely dinner",
                     "your help with the move", "the invoice", "the feedback on my draft", "covering my shift"])
    update = ch(rng, [
        "the delivery has been moved to next week", "I've finished the first half of the report",
        "the landlord has agreed to fix the heating", "my flight lands a little later than planned",
        "we got the grant", "the venue can only fit forty people", "I'm starting my new job soon",
        "the printer in room 4 is broken again", "the client wants a smaller budget",
    ])
    req = ch(rng, ["meet for coffee", "have a short call", "go over the numbers", "pick up the keys",
                   "finalise the schedule", "catch up properly"])
    day = ch(rng, WEEKDAYS)
    t = rand_time(rng)
    phone = rand_phone(rng)
    date = rand_date(rng, with_year=False)
    lines = [f"{ch(rng, ['Hi', 'Hello', 'Dear', 'Hey'])} {to},", "",
             f"Thanks for {thing}. I wanted to let you know that {update}."]
    if rng.random() < 0.85:
        lines.append(f"Could we {req} on {day} at {t}?")
    if rng.random() < 0.5:
        lines.append(f"I'm away from {date}, so it would be good to sort this out before then.")
    if rng.random() < 0.5:
        lines.append(f"My new number is {phone}.")
    lines += ["", ch(rng, ["Best,", "Thanks,", "Cheers,", "Kind regards,", "All the best,"]), frm.split()[0] if rng.random() < 0.5 else frm]
    text = "\n".join(lines)
    facts = {"names": [to, frm.split()[0]], "dates": [day] + ([date] if date in text else []),
             "places": [], "emails": [], "phones": [phone] if phone in text else [], "prices": [],
             "orgs": [], "topic": "personal email"}
    return text, facts


def passage_travel(rng):
    city, country = ch(rng, CITIES)
    city2, _ = ch(rng, CITIES)
    while city2 == city:
        city2, _ = ch(rng, CITIES)
    date = rand_date(rng)
    hours = rng.randint(2, 14)
    mode = ch(rng, ["train ride", "bus journey", "flight", "ferry crossing", "drive"])
    hotel = ch(rng, ["Hotel Aurora", "the Blue Door guesthouse", "Casa Limón", "the Harbour Inn", "Pension Adler", "the Kite Hostel"])
    price = rand_price(rng, 35, 220)
    sight = ch(rng, SIGHTS)
    dish = ch(rng, DISHES)
    guide = ch(rng, FIRST)
    parts = [
        f"We arrived in {city} on {date} after {art(hours)} {hours}-hour {mode} from {city2}.",
        f"Our room at {hotel} was {ch(rng, ['small but spotless', 'noisy at night', 'lovely', 'a bit overpriced', 'cosy'])} and cost {price} a night.",
        f"On the second day we visited {sight} and had {dish} for lunch.",
        f"{guide}, our guide, told us to {ch(rng, ['get there early to avoid queues', 'try the local pastries', 'take the tram instead of taxis', 'bring cash for the markets'])}.",
        ch(rng, ["It rained most of the week, but we didn't mind.", "We'd happily go back.", "The trip home was uneventful.", "I lost my sunglasses on the last day."]),
    ]
    keep = [parts[0]] + [p for p in parts[1:] if rng.random() < 0.8]
    text = " ".join(keep)
    facts = {"names": [guide] if guide in text else [], "dates": [date], "places": [city, city2] + ([sight] if sight in text else []),
             "emails": [], "phones": [], "prices": [price] if price in text else [], "orgs": [], "topic": "travel"}
    return text, facts


def passage_product(rng):
    prod, cat_ = ch(rng, PRODUCTS)
    brand = ch(rng, BRANDS)
    feats = sample(rng, PRODUCT_FEATURES, 3)
    cols = sample(rng, COLOURS, rng.randint(2, 3))
    price = rand_price(rng, 15, 600)
    parts = [
        f"The {brand} {prod} {feats[0]}.",
        f"It also {feats[1]} and {feats[2]}.",
        f"It comes in {join_and(cols)}.",
        f"It costs {price} and {ch(rng, ['ships within two days', 'is available from next month', 'is on sale until Friday', 'ships free in the EU'])}.",
    ]
    keep = [parts[0]] + [p for p in parts[1:] if rng.random() < 0.85]
    text = " ".join(keep)
    facts = {"names": [], "dates": [], "places": [], "emails": [], "phones": [],
             "prices": [price] if price in text else [], "orgs": [brand], "topic": "product"}
    return text, facts


def passage_meeting(rng):
    team = ch(rng, TEAMS)
    date = rand_date(rng)
    people = sample(rng, FIRST, 3)
    t1, t2 = sample(rng, MEETING_TASKS, 2)
    d2 = rand_date(rng, with_year=False)
    proj = ch(rng, PROJECTS)
    budget = rand_price(rng, 2000, 90000)
    nextday = ch(rng, WEEKDAYS[:5])
    nt = rand_time(rng)
    parts = [
        f"Notes from the {team} team meeting on {date}.",
        f"{people[0]} will {t1} by {d2}.",
        f"{people[1]} reported that {ch(rng, MEETING_STATUS)}.",
        f"{people[2]} agreed to {t2}.",
        f"The budget for {proj} is {budget}.",
        f"Next meeting: {nextday} at {nt}.",
    ]
    keep = [parts[0], parts[1]] + [p for p in parts[2:] if rng.random() < 0.8]
    text = " ".join(keep)
    facts = {"names": [p for p in people if p in text], "dates": [date, d2] + ([nextday] if nextday in text else []),
             "places": [], "emails": [], "phones": [], "prices": [budget] if budget in text else [],
             "orgs": [], "topic": "work meeting"}
    return text, facts


def passage_job(rng):
    co = ch(rng, COMPANIES)
    city, _ = ch(rng, CITIES)
    role = ch(rng, ["junior accountant", "warehouse supervisor", "front-end developer", "barista",
                    "part-time receptionist", "delivery driver", "marketing assistant", "nurse",
                    "data analyst", "primary school teacher", "bike mechanic", "chef de partie"])
    sal = ch(rng, [f"${rng.randint(30, 120)},000 a year", f"£{rng.randint(11, 25)} an hour",
                   f"€{rng.randint(28, 80)},000 per year"])
    date = rand_date(rng)
    name = person(rng)
    email = rand_email(rng, name)
    parts = [
        f"{co} is hiring a {role} in {city}.",
        ch(rng, ["The role is full time.", "Hours are flexible.", "Some weekend work is required.", "Remote work is possible two days a week."]),
        f"The salary is {sal}.",
        f"Send your CV to {name} at {email} by {date}.",
    ]
    keep = [parts[0]] + [p for p in parts[1:] if rng.random() < 0.85]
    text = " ".join(keep)
    facts = {"names": [name] if name in text else [], "dates": [date] if date in text else [], "places": [city],
             "emails": [email] if email in text else [], "phones": [], "prices": [sal] if sal in text else [],
             "orgs": [co], "topic": "job advert"}
    return text, facts


def passage_school(rng):
    school = ch(rng, ["Hillside Primary", "Oakwood Academy", "St Anne's School", "Lakeview Middle School", "Northgate College"])
    date = rand_date(rng)
    reason = ch(rng, ["staff training", "a burst water pipe", "the local election", "a heating repair", "an inspection"])
    date2 = rand_date(rng, with_year=False)
    name = person(rng)
    phone = rand_phone(rng)
    parts = [
        f"Dear parents and carers, {school} will be closed on {date} because of {reason}.",
        ch(rng, ["After-school clubs will also be cancelled.", "Homework will be set online.",
                 "The breakfast club will run as normal.", "We apologise for the short notice."]),
        f"The school reopens on {date2}.",
        f"If you have questions, please contact {name} on {phone}.",
    ]
    keep = [parts[0]] + [p for p in parts[1:] if rng.random() < 0.8]
    text = " ".join(keep)
    facts = {"names": [name] if name in text else [], "dates": [date] + ([date2] if date2 in text else []),
             "places": [], "emails": [], "phones": [phone] if phone in text else [], "prices": [],
             "orgs": [school], "topic": "school notice"}
    return text, facts


# Hand-written general-knowledge paragraphs (original wording) for summaries etc.
TOPIC_PARAS = [
    ("bees", "Honeybees live in colonies that can hold tens of thousands of workers. The workers are female and do almost everything: they clean the hive, feed the young, guard the entrance and fly out to collect nectar and pollen. A single queen lays the eggs, and a few hundred males exist mainly to mate with queens from other colonies. In winter the colony clusters together and shivers its flight muscles to stay warm."),
    ("sourdough", "Sourdough bread rises thanks to a starter, a mix of flour and water that hosts wild yeast and lactic acid bacteria. The yeast produces the gas that lifts the dough, while the bacteria add the slightly sour taste. Bakers feed their starter regularly with fresh flour and water. Because the process is slow, sourdough often takes a day or more from start to finish."),
    ("tides", "Tides are caused mainly by the Moon's gravity pulling on the oceans. The water bulges on the side of the Earth facing the Moon and, less obviously, on the opposite side. As the Earth turns, most coasts pass through two high tides and two low tides a day. The Sun also plays a part, which is why tides are strongest around new and full moons."),
    ("bicycles", "Early bicycles had no pedals at all; riders pushed themselves along with their feet. Pedals were later attached directly to the front wheel, which led to the tall penny-farthing design. The safety bicycle, with two wheels of similar size and a chain driving the rear wheel, appeared in the 1880s. Pneumatic tyres soon followed and made riding far more comfortable."),
    ("coffee", "Coffee beans are the seeds of a cherry-like fruit that grows on shrubs in tropical regions. After harvest, the fruit is removed and the seeds are dried. Roasting turns the pale green seeds brown and develops hundreds of aroma compounds. Lighter roasts tend to keep more fruity and acidic flavours, while darker roasts taste more bitter and smoky."),
    ("volcanoes", "A volcano forms where molten rock from deep underground reaches the surface. Some volcanoes erupt explosively because their magma is thick and traps gas. Others, like many in Hawaii, release runny lava that flows steadily for long distances. Volcanic soil can be very fertile, which is one reason people continue to farm on the slopes of active volcanoes."),
    ("sleep", "Sleep comes in cycles that last roughly ninety minutes. Each cycle moves from light sleep into deep sleep and then into REM sleep, when most vivid dreaming happens. Deep sleep is important for physical recovery, while REM sleep seems to help with memory and mood. Most adults need between seven and nine hours a night, although needs vary from person to person."),
    ("recycling glass", "Glass can be recycled again and again without losing quality. Collected bottles and jars are sorted by colour, crushed into small pieces called cullet, and melted down with sand and other materials. Using cullet lowers the furnace temperature needed, which saves energy. However, some items, such as window panes and ovenware, have a different chemistry and should not go in bottle banks."),
    ("octopuses", "Octopuses have eight arms lined with suckers that can both grip and taste. They have a large brain for an invertebrate, and much of their nervous system sits in the arms themselves. Many species can change the colour and texture of their skin in a fraction of a second to hide from predators. Most octopuses live only a year or two."),
    ("public libraries", "Public libraries lend far more than books today. Many offer free internet access, help with job applications, language classes and story time for young children. Some lend tools, musical instruments or even seeds for gardeners. For many people, the library is one of the few indoor public spaces where they can stay without having to buy anything."),
    ("solar panels", "Solar panels turn sunlight into electricity using cells made mostly of silicon. When light hits a cell, it knocks electrons loose and creates a flow of current. The panels produce direct current, so an inverter converts it into the alternating current used in homes. Panels still work on cloudy days, although they produce less power."),
    ("marathons", "A marathon is 42.195 kilometres long. Most runners train for several months, slowly building up their weekly distance and including one long run each week. In the final weeks before the race they reduce their training so their legs are fresh. On race day, starting too fast is one of the most common mistakes."),
    ("houseplants", "Most houseplants die from too much water rather than too little. Roots sitting in soggy soil cannot get enough oxygen and begin to rot. A simple rule is to water only when the top few centimetres of soil feel dry. Pots with drainage holes make a big difference, and plants usually need less water in winter."),
    ("the printing press", "Before the printing press, books in Europe were copied by hand, which made them rare and expensive. Movable metal type allowed a page to be set once and printed many times. Printing spread quickly through European cities in the late fifteenth century. Cheaper books helped ideas travel faster and encouraged more people to learn to read."),
    ("penguins", "Penguins are birds that cannot fly, but they are excellent swimmers. Their wings have evolved into stiff flippers, and their dense feathers keep them warm in cold water. Not all penguins live in icy places; some species live on warm coasts in South America and Africa. Many penguin pairs take turns keeping their egg warm while the other partner feeds at sea."),
    ("composting", "Composting turns kitchen scraps and garden waste into a dark, crumbly material that improves soil. Microbes break down the waste, and they work best with a mix of green material, such as vegetable peelings, and brown material, such as dry leaves or cardboard. Turning the pile adds air and speeds things up. Meat and dairy are usually left out because they attract pests."),
    ("the Great Wall", "The Great Wall of China is not one single wall but a series of walls built over many centuries. Different dynasties built and rebuilt sections to protect against raids from the north. Much of the wall that tourists visit today dates from the Ming dynasty. Its total length, including all branches, runs to many thousands of kilometres."),
    ("vaccines", "Vaccines train the immune system to recognise a germ without causing the disease. They may contain a weakened or inactivated form of the germ, a piece of it, or instructions for the body to make one harmless piece. The immune system responds by making antibodies and memory cells. If the real germ turns up later, the body can fight it off more quickly."),
    ("electric cars", "Electric cars run on batteries instead of petrol or diesel. They are quiet, have fewer moving parts and produce no exhaust at the tailpipe. Their range depends on battery size, driving style and the weather, since cold temperatures reduce how far they can go. Charging at home overnight is the cheapest option for most owners."),
    ("chess", "Chess is played on a board of sixty-four squares by two players who each start with sixteen pieces. The goal is to checkmate the opponent's king, meaning it is under attack and cannot escape. Each type of piece moves differently; the knight, for example, moves in an L shape and can jump over other pieces. Games can end in a draw in several ways, including stalemate."),
    ("rainforests", "Tropical rainforests cover a small share of the Earth's land but are home to a huge variety of plants and animals. They receive heavy rainfall throughout the year. Tall trees form a dense canopy that blocks much of the light from reaching the forest floor. Clearing forests for farming and logging is the main threat to them."),
    ("the Olympics", "The modern Olympic Games began in 1896 in Athens. Summer and Winter Games are now held in different years, so there is an Olympic event every two years. Athletes compete for gold, silver and bronze medals. Host cities spend years preparing venues, transport and housing for athletes and visitors."),
    ("tea", "All true tea comes from the same plant, Camellia sinensis. Green, black, white and oolong teas differ mainly in how the leaves are processed after picking. Black tea is fully oxidised, which darkens the leaves and changes their flavour, while green tea is heated early to stop oxidation. Herbal drinks such as peppermint or chamomile are not technically tea."),
    ("moon phases", "The Moon does not make its own light; we see sunlight reflected from its surface. As it orbits the Earth, we see different portions of its sunlit half. This gives the familiar cycle of phases from new moon to full moon and back again. One full cycle takes about twenty-nine and a half days."),
]

PASSAGE_FUNCS = [passage_event, passage_council, passage_company, passage_email, passage_travel,
                 passage_product, passage_meeting, passage_job, passage_school]


def topic_passage(rng):
    topic, para = ch(rng, TOPIC_PARAS)
    sents = [s.strip() for s in para.split(". ") if s.strip()]
    # sometimes keep only a prefix of the paragraph to vary length
    k = rng.randint(max(2, len(sents) - 2), len(sents))
    text = ". ".join(sents[:k]).rstrip(".") + "."
    return text, {"names": [], "dates": [], "places": [], "emails": [], "phones": [], "prices": [],
                  "orgs": [], "topic": topic}


def any_passage(rng, allow_topic=True):
    if allow_topic and rng.random() < 0.22:
        return topic_passage(rng)
    return ch(rng, PASSAGE_FUNCS)(rng)


def frame(rng, instr: str, body: str) -> str:
    """Place an instruction before or after a body of text in one of several layouts."""
    one_line = "\n" not in body and len(body) < 260
    opts = [
        lambda: f"{instr}\n\n{body}",
        lambda: f"{body}\n\n{instr}",
        lambda: f'{instr}\n"""\n{body}\n"""',
        lambda: f"Text: {body}\n\n{instr}",
        lambda: f"{instr}\n\nText:\n{body}",
        lambda: f"{instr}\n---\n{body}\n---",
        lambda: f"{instr}\n\n{body}",
        lambda: f"{instr}\n```\n{body}\n```",
    ]
    if one_line:
        opts += [lambda: f'{instr} "{body}"', lambda: f"{instr} {body}", lambda: f'"{body}"\n{instr}']
    return ch(rng, opts)()


# ---------------------------------------------------------------------------
# SIMPLE generators.  Each returns (text, category).
# ---------------------------------------------------------------------------

def g_summarize(rng):
    text, _ = any_passage(rng)
    n = ch(rng, [8, 10, 12, 15, 20, 25, 30])
    instr = ch(rng, [
        "Summarize this in one sentence.", "Give me a one-sentence summary of the text below.",
        "TL;DR please:", f"Can you sum this up in {n} words or fewer?",
        f"Write a short summary (max {n} words) of the following.", "What's the gist of this?",
        "Summarise the following paragraph.", "In one sentence, what is this about?",
        "Condense this into a single line.", "Briefly summarize:", "Summarize this for me please",
        f"Shorten this to about {n} words.", "Give a one-line summary.", "sum this up quickly",
        "What is the main point of this text?", "Could you summarise this in a sentence or two?",
        "I'd like a brief summary of this message.", "Boil this down to one sentence:",
    ])
    return frame(rng, instr, text), "summarize"


def g_extract(rng):
    for _ in range(20):
        text, facts = any_passage(rng, allow_topic=False)
        keys = [k for k in ("names", "dates", "emails", "phones", "prices", "places", "orgs") if facts[k]]
        if keys:
            break
    key = ch(rng, keys)
    instr = ch(rng, {
        "names": ["List all the people mentioned in this text.", "Extract the names of the people.",
                  "Who is mentioned in the following? Just give the names.", "Pull out every person's name from this:",
                  "Which people are named here?", "Give me the names in this text as a comma-separated list."],
        "dates": ["What dates are mentioned?", "Extract all dates from the text below.", "List every date in this message.",
                  "When is this happening? Just the date.", "Pull out the dates and days mentioned.",
                  "Find the date(s) in this text."],
        "emails": ["Find the email address in this text.", "Extract any email addresses.",
                   "What email should I write to, according to this?", "Pull out the email address, nothing else."],
        "phones": ["What's the phone number in this message?", "Pull out the phone number.",
                   "Extract the contact number from this text.", "Which number should I call?"],
        "prices": ["Extract all prices or amounts of money.", "How much does it cost, according to the text?",
                   "List the monetary amounts mentioned.", "What's the price mentioned here?",
                   "Find every amount of money in this text."],
        "places": ["Which places are mentioned?", "Extract the locations from this text.",
                   "List the cities and places named below.", "Where does this take place?"],
        "orgs": ["Which companies or organisations are named?", "Extract the organisation names.",
                 "What is the name of the company or organisation in this text?"],
    }[key])
    cat = {"names": "extract_names", "dates": "extract_dates", "emails": "extract_contact",
           "phones": "extract_contact", "prices": "extract_prices", "places": "extract_locations",
           "orgs": "extract_entities"}[key]
    if rng.random() < 0.15:
        instr += " Return them as a JSON list."
    return frame(rng, instr, text), cat


REVIEW_DOMAINS = {
    "product": {
        "things": [p for p, _ in PRODUCTS],
        "pos": ["Works exactly as described.", "The battery lasts for days.", "Setup took five minutes.",
                "Honestly the best thing I've bought this year.", "It feels sturdy and well made.",
                "Great value for the price.", "My partner uses it every day now.", "Arrived a day early, too.",
                "Much quieter than my old one.", "I'd buy it again without thinking."],
        "neg": ["It stopped working after two weeks.", "The instructions were useless.", "Way too loud for a small flat.",
                "I returned it the next day.", "Cheap plastic that already feels flimsy.", "Customer service never replied.",
                "It looks nothing like the photos.", "Overpriced for what you get.", "The app keeps crashing when I connect it.",
                "One of the buttons broke on day three."],
        "mix": ["It does the job, but the cable is annoyingly short.", "Good sound, though it's heavier than I expected.",
                "Fine for the price, nothing special."],
        "intro": ["I bought this {thing} for my {rel}.", "Been using the {thing} for a month.", "Ordered the {thing} last week.",
                  "Review of the {thing}:", "Got this {thing} on sale."],
    },
    "restaurant": {
        "things": ["pizzeria", "sushi bar", "taco place", "brunch café", "steakhouse", "vegan bistro", "noodle shop", "curry house"],
        "pos": ["The food came out hot and fast.", "Our waiter was lovely and remembered our order perfectly.",
                "Best pasta I've had outside Italy.", "Portions were generous and prices fair.", "Cosy place, we'll be back.",
                "The desserts alone are worth the trip."],
        "neg": ["We waited fifty minutes for cold food.", "The staff ignored us all evening.", "My soup was basically salt water.",
                "Way too expensive for tiny portions.", "The table was sticky and the music was deafening.",
                "They got our order wrong twice."],
        "mix": ["The starters were great but the mains were bland.", "Nice view, average food.", "Tasty, but service was slow."],
        "intro": ["Went to this {thing} for my {rel}'s birthday.", "Tried the new {thing} on Friday.", "Lunch at the {thing} near work.",
                  "We had dinner at this {thing} last night."],
    },
    "app": {
        "things": ["budgeting app", "language-learning app", "meditation app", "photo editor", "to-do list app",
                   "weather app", "banking app", "food delivery app", "fitness app"],
        "pos": ["Clean design and no annoying ads.", "It syncs perfectly between my phone and laptop.",
                "It actually helped me stick to my goals.", "Fast, simple and it just works.", "The latest update fixed everything."],
        "neg": ["Crashes every time I open it.", "Too many ads, I uninstalled it.", "It drains my battery like crazy.",
                "The subscription is a rip-off.", "Since the update I can't even log in.", "It lost all my data."],
        "mix": ["Useful features but the interface is confusing.", "Good app, but the free version is very limited."],
        "intro": ["I've been using this {thing} for a few weeks.", "Downloaded the {thing} on a friend's recommendation.",
                  "Review of the {thing}:", "My honest opinion of this {thing}:"],
    },
    "film": {
        "things": ["film", "movie", "documentary", "thriller", "animated film", "romantic comedy", "sci-fi series"],
        "pos": ["The acting was superb and the ending gave me chills.", "Funny, clever and surprisingly moving.",
                "I couldn't look away for two hours.", "Beautifully shot, with a great soundtrack.", "An instant favourite."],
        "neg": ["Two hours of my life I won't get back.", "The plot made no sense and the dialogue was wooden.",
                "Boring from start to finish.", "I fell asleep halfway through.", "Predictable and far too long."],
        "mix": ["Great visuals, weak story.", "The first half was brilliant, the second half dragged."],
        "intro": ["Just watched this {thing} with my {rel}.", "Saw the new {thing} at the cinema.", "Finally got round to this {thing}."],
    },
    "hotel": {
        "things": ["hotel", "hostel", "guesthouse", "holiday apartment", "B&B"],
        "pos": ["Spotless room and a really comfy bed.", "Staff went out of their way to help us.", "Great location, close to everything.",
                "Breakfast was excellent."],
        "neg": ["The room smelled of smoke and the shower was cold.", "Noisy all night and the wifi never worked.",
                "Nothing like the pictures online.", "Check-in took over an hour."],
        "mix": ["Good location, but the rooms are tired.", "Friendly staff, thin walls."],
        "intro": ["Stayed at this {thing} for three nights.", "We booked this {thing} for a weekend away.", "Our {thing} in town:"],
    },
}
RELS = ["mum", "dad", "sister", "brother", "partner", "son", "daughter", "flatmate", "grandmother", "best friend", "boss"]
SHORT_POSTS = [
    ("ugh my train is late again", "neg"), ("Loving the new update!!", "pos"), ("worst customer service ever", "neg"),
    ("Just finished my first 10k and I feel amazing", "pos"), ("meh, the concert was ok i guess", "mix"),
    ("Can't believe how good this coffee is", "pos"), ("my package got lost. again.", "neg"),
    ("the new season is SO good", "pos"), ("why is everything so expensive now", "neg"),
    ("Beautiful morning for a walk 🌞", "pos"), ("not sure how I feel about the ending tbh", "mix"),
    ("Stuck in traffic for two hours, fantastic start to the week", "neg"), ("best pizza in town, no contest", "pos"),
    ("the lecture was fine, a bit long", "mix"), ("I love my new haircut!", "pos"), ("my laptop died mid-presentation", "neg"),
]


def make_review(rng):
    dom = ch(rng, list(REVIEW_DOMAINS))
    d = REVIEW_DOMAINS[dom]
    thing = ch(rng, d["things"])
    pol = ch(rng, ["pos", "neg", "pos", "neg", "mix"])
    parts = [ch(rng, d["intro"]).format(thing=thing, rel=ch(rng, RELS))]
    if pol == "mix":
        parts += [ch(rng, d["pos"]), ch(rng, d["mix"]), ch(rng, d["neg"])] if rng.random() < 0.5 else [ch(rng, d["mix"])]
    else:
        parts += sample(rng, d[pol], rng.randint(1, 3))
    if rng.random() < 0.3:
        parts.append(ch(rng, {"pos": ["Five stars.", "Highly recommend!", "10/10."], "neg": ["One star.", "Avoid.", "Never again."],
                              "mix": ["Three stars.", "It's okay.", "Mixed feelings."]}[pol]))
    return " ".join(parts), dom, thing


def g_sentiment(rng):
    if rng.random() < 0.15:
        text = ch(rng, SHORT_POSTS)[0]
        dom, thing = "post", "post"
    else:
        text, dom, thing = make_review(rng)
    instr = ch(rng, [
        "Is this review positive or negative?", "Classify the sentiment of the following review as positive, negative or neutral.",
        "Sentiment?", "What's the sentiment here: positive, negative, or mixed?", "Rate this review from 1 to 5 stars.",
        "Is the customer happy?", f"Does this reviewer recommend the {thing}?", "Label the sentiment (pos/neg):",
        "Was this person satisfied? Answer yes or no.", "Tell me if the tone of this is positive or negative.",
        "Classify: positive / negative / neutral", "What is the overall sentiment of this text?",
        "Would you say this person liked it?", "Give the sentiment in one word.",
    ])
    return frame(rng, instr, text), "sentiment"


HEADLINES = {
    "sports": ["{city} United edge past rivals in extra-time thriller", "Veteran goalkeeper announces retirement at 38",
               "Teenage sprinter breaks national record in {city}", "Underdogs reach cup final for the first time",
               "Tennis star withdraws from tournament with wrist injury", "Cycling race diverted after road collapse"],
    "politics": ["Parliament passes controversial housing bill", "Mayor of {city} faces no-confidence vote",
                 "Opposition leader calls for early election", "New minister promises to cut waiting lists",
                 "Talks on border deal stall for third week", "Voter turnout hits record low in local elections"],
    "business": ["{company} profits fall as costs soar", "Central bank holds interest rates steady",
                 "Retail sales rise for second month running", "{company} to cut 300 jobs in restructuring",
                 "Start-up raises $40m to expand across Europe", "Oil prices slide on weak demand"],
    "technology": ["New phone chip promises twice the battery life", "{company} unveils AI tool for small businesses",
                   "Major outage knocks popular messaging app offline", "Researchers build faster quantum memory",
                   "Popular browser to block third-party cookies", "Hackers target hospital booking systems"],
    "health": ["Study links short walks after meals to lower blood sugar", "Flu cases rise earlier than usual this winter",
               "New clinic in {city} cuts waiting times for scans", "Doctors warn about heatwave risks for the elderly",
               "Trial shows promise for migraine treatment"],
    "science": ["Astronomers spot water vapour on distant planet", "Fossil of feathered dinosaur found in quarry",
                "Deep-sea survey finds dozens of new species", "Scientists map the brain of a fruit fly",
                "Glacier retreat speeds up, satellite data show"],
    "entertainment": ["Pop star announces surprise stadium tour", "Streaming hit renewed for a third season",
                      "Film festival in {city} opens with sold-out premiere", "Beloved sitcom cast reunites for charity special",
                      "Author's debut novel tops bestseller list"],
}
INTENT_MSGS = {
    "refund request": ["I'd like my money back for order {order}, the item arrived broken.", "How do I get a refund? The shoes don't fit.",
                       "please refund me, I was charged for something I returned", "Can I return the blender and get a refund?"],
    "delivery status": ["Where is my parcel? It was due on {day}.", "my order {order} still hasn't shipped",
                        "Tracking says delivered but nothing arrived.", "When will my package get here?"],
    "account access": ["I can't log in, it says my password is wrong.", "locked out of my account after too many attempts",
                       "The reset email never arrives.", "How do I change the email on my account?"],
    "cancel subscription": ["Please cancel my subscription from next month.", "how do i stop the monthly payments",
                            "I want to end my membership.", "Cancel my plan, I'm moving abroad."],
    "billing question": ["Why was I charged twice this month?", "What is this {price} charge on my card?",
                         "Can I get an invoice with my company name on it?", "My bill went up without warning."],
    "product question": ["Does the {product} work with Android phones?", "Is the {product} available in {colour}?",
                         "What's the warranty on the {product}?", "Can the {product} go in the dishwasher?"],
    "complaint": ["Your driver was rude to my mother.", "This is the third time my order has been wrong.",
                  "I waited on hold for an hour and got cut off.", "The store was filthy and the staff didn't care."],
    "praise": ["Just wanted to say your support team was brilliant today.", "Thanks, the repair was quick and perfect.",
               "Love the new menu, keep it up!"],
}
SPAM = ["CONGRATULATIONS! You've won a {price} gift card. Click here to claim now!!!",
        "Your account will be suspended. Verify your password at this link immediately.",
        "Earn $5,000 a week from home, no experience needed. Reply YES.",
        "Hot singles in {city} want to meet you", "You have an unclaimed parcel. Pay {price} customs fee here.",
        "Limited offer: cheap meds, no prescription needed"]
HAM = ["Hi {name}, are we still on for lunch {day}?", "Reminder: the dentist appointment is at {time} tomorrow.",
       "Attached is the agenda for Monday's meeting.", "Can you pick up milk on the way home?",
       "Your order has been dispatched and should arrive {day}.", "Thanks for the photos, they're lovely!"]
FOREIGN = [
    ("Où est la gare la plus proche ?", "French"), ("¿Cuánto cuesta esta camisa?", "Spanish"),
    ("Ich habe heute leider keine Zeit.", "German"), ("Mi piace molto questa città.", "Italian"),
    ("Obrigado pela ajuda!", "Portuguese"), ("Ik woon al tien jaar in Utrecht.", "Dutch"),
    ("Jag talar lite svenska.", "Swedish"), ("Dziękuję bardzo za kawę.", "Polish"),
    ("Bugün hava çok güzel.", "Turkish"), ("Hvor er toilettet?", "Danish"), ("Kiitos, hyvää päivää!", "Finnish"),
    ("Selamat pagi, apa kabar?", "Indonesian"), ("Habari za asubuhi?", "Swahili"),
    ("Je voudrais un café, s'il vous plaît.", "French"), ("Dónde está la biblioteca?", "Spanish"),
    ("Wir sehen uns morgen.", "German"), ("Non lo so.", "Italian"), ("Onde fica o mercado?", "Portuguese"),
]


def g_classify(rng):
    kind = rng.randrange(6)
    city, _ = ch(rng, CITIES)
    if kind == 0:
        topic = ch(rng, list(HEADLINES))
        text = ch(rng, HEADLINES[topic]).format(city=city, company=ch(rng, COMPANIES))
        labels = sample(rng, list(HEADLINES), 4)
        if topic not in labels:
            labels[rng.randrange(4)] = topic
        instr = ch(rng, [f"Classify this headline into one of: {', '.join(labels)}.", "What topic is this headline about?",
                         f"Which category fits this news headline best ({' / '.join(labels)})?", "Topic of this headline?",
                         "Tag this article title with a section of the newspaper."])
        return frame(rng, instr, text), "topic_classification"
    if kind in (1, 2):
        intent = ch(rng, list(INTENT_MSGS))
        prod, _ = ch(rng, PRODUCTS)
        text = ch(rng, INTENT_MSGS[intent]).format(order=f"#{rng.randint(10000, 99999)}", day=ch(rng, WEEKDAYS),
                                                    price=rand_price(rng), product=prod, colour=ch(rng, COLOURS))
        labels = sample(rng, list(INTENT_MSGS), 5)
        if intent not in labels:
            labels[rng.randrange(5)] = intent
        instr = ch(rng, [f"What is the intent of this customer message? Options: {', '.join(labels)}.",
                         "Classify this support ticket by intent.", "What does the customer want? Answer in a few words.",
                         f"Route this message to one of these queues: {'; '.join(labels)}.", "Which category does this message belong to?",
                         "Label the intent:", "Is this a complaint, a question, or a request?",
                         "Label this ticket's priority as low, medium or high."])
        return frame(rng, instr, text), "intent_classification"
    if kind == 3:
        is_spam = rng.random() < 0.5
        tmpl = ch(rng, SPAM if is_spam else HAM)
        text = tmpl.format(price=rand_price(rng, 50, 1000), city=city, name=ch(rng, FIRST), day=ch(rng, WEEKDAYS), time=rand_time(rng))
        instr = ch(rng, ["Is this message spam or not spam?", "Spam or ham?", "Does this text look like a scam?",
                         "Classify this SMS as spam or legitimate.", "Should this email go to the junk folder?"])
        return frame(rng, instr, text), "spam_detection"
    if kind == 4:
        text, lang = ch(rng, FOREIGN)
        instr = ch(rng, ["Which language is this sentence in?", "What language is this?", "Identify the language:",
                         "Detect the language of this text."])
        return frame(rng, instr, text), "language_id"
    text = ch(rng, [
        "Close the window, please.", "Is the museum open on Sundays?", "The meeting moved to Thursday.",
        "Could you send me the file?", "I think it's going to rain.", "Turn left at the bakery.",
        "What time does the shop close?", "Our flight was cancelled.", "Bring your passport tomorrow.",
        "Have you seen my keys?", "The soup needs more salt.", "Call me when you land.",
    ])
    instr = ch(rng, ["Is this sentence a question, a command or a statement?", "Classify the sentence type:",
                     "Is this formal or informal?", "Is this sentence in the past, present or future tense?"])
    return frame(rng, instr, text), "text_classification"


CORRECT_SENTENCES = [
    "I received your letter yesterday and I was very happy to hear from you.",
    "She doesn't know whether they're coming to the party.",
    "We definitely need to separate the recycling from the rubbish.",
    "The committee will meet again next week to discuss the budget.",
    "Their house is bigger than ours, but it's further from the station.",
    "He goes to the gym three times a week.",
    "I would have called you if I had known you were in town.",
    "The children were playing in the garden when it started to rain.",
    "Could you let me know if you're available on Friday?",
    "It's important to check your work before you submit it.",
    "My sister and I went to the cinema last night.",
    "There are fewer people here than I expected.",
    "The dog wagged its tail when it saw us.",
    "I'm looking forward to seeing you at the conference.",
    "Neither of the answers is correct.",
    "We were supposed to arrive at noon, but the train was late.",
    "She has lived in this city since she was a child.",
    "Please make sure the door is locked before you leave.",
    "The results of the experiment were surprising.",
    "I don't think anyone noticed the mistake.",
    "Each of the students has a different timetable.",
    "They've already finished their homework.",
    "You're going to love the new restaurant on the corner.",
    "The weather was so nice that we decided to walk.",
    "Our manager recommended that we take a short break.",
    "I accidentally left my umbrella on the bus.",
    "The library is quieter than the café, so I study there.",
    "Whose jacket is this?",
    "He apologised for being late to the meeting.",
    "The company's profits rose sharply last year.",
    "If it rains tomorrow, we'll stay at home.",
    "I have been waiting for the bus for twenty minutes.",
    "We bought apples, bread and cheese at the market.",
    "The new software is much faster than the old one.",
    "She speaks three languages fluently.",
    "My parents have been married for thirty years.",
    "Let's meet in front of the museum at ten.",
    "The restaurant was recommended by a friend of mine.",
    "I couldn't find the address, so I asked a neighbour.",
    "This is the best book I have ever read.",
]
MISSPELL = {
    "received": "recieved", "definitely": "definately", "separate": "seperate", "whether": "wether",
    "necessary": "neccessary", "tomorrow": "tommorow", "really": "realy", "because": "becuase",
    "different": "diffrent", "experiment": "experament", "restaurant": "restaraunt", "accidentally": "accidently",
    "recommended": "recomended", "weather": "wheather", "apologised": "appologised", "surprising": "suprising",
    "fluently": "fluenty", "neighbour": "nieghbour", "software": "sofware", "committee": "comittee",
    "important": "importent", "available": "availible", "conference": "conferance", "library": "libary",
    "married": "marryed", "believe": "beleive", "business": "buisness", "address": "adress",
}
GRAMMAR_SWAPS = [
    ("doesn't", "don't"), ("goes", "go"), ("has", "have"), ("were", "was"), ("their", "there"),
    ("they're", "their"), ("It's", "Its"), ("its", "it's"), ("fewer", "less"), ("had known", "knew"),
    ("You're", "Your"), ("Whose", "Who's"), ("I don't", "I dont"), ("I'm", "Im"), ("have been", "am"),
    ("has lived", "is living"), ("and I", "and me"), ("than", "then"), ("is", "are"), ("seeing", "see"),
    ("couldn't", "could'nt"), ("ever", "never"), ("bought", "buyed"), ("left", "leaved"),
]
HANDMADE_ERRORS = [
    "me and him was going to the shop when we seen the accident",
    "Their going to announce the winners tomorow.",
    "i could of done it better if i had more time",
    "The informations you sent me was very usefull.",
    "She dont like when people talks loud in the library.",
    "Between you and I, the plan wont work.",
    "Alot of people has asked about the new schedule.",
    "We was suppose to meet at 5 but he never came.",
    "Can you borrow me your pen?",
    "irregardless of what they say, i think its a good idea",
    "Me and my friend has went to Paris last summer.",
    "The amount of people at the concert were huge.",
    "He sayed he will comes tomorrow.",
    "I has finished the report, its on you're desk.",
    "less cars means cleaner air for everybody.",
    "My brother is more taller then me.",
    "The childs was playing outside all day.",
    "Everyone have their own opinion about it.",
    "I am agree with your suggestion.",
    "Please send me the documents untill Friday.",
    "the meeting have been cancel becuase of the weather",
    "I look forward to hear from you.",
    "There is many reasons to visit Portugal.",
    "She explained me the problem very good.",
]


def corrupt(rng, s):
    out = s
    changes = 0
    words = out.split(" ")
    for i, w in enumerate(words):
        core = w.strip(".,?!")
        if core.lower() in MISSPELL and rng.random() < 0.7:
            words[i] = w.replace(core, MISSPELL[core.lower()])
            changes += 1
    out = " ".join(words)
    swaps = [sw for sw in GRAMMAR_SWAPS if f" {sw[0]} " in f" {out} "]
    rng.shuffle(swaps)
    for a, b in swaps[: rng.randint(1, 2)]:
        out = (" " + out + " ").replace(f" {a} ", f" {b} ", 1).strip()
        changes += 1
    if rng.random() < 0.3:
        out = out[0].lower() + out[1:]
        changes += 1
    if rng.random() < 0.3:
        out = out.rstrip(".?!")
        changes += 1
    if rng.random() < 0.2:
        out = out.replace(",", "", 1)
    return out if changes and out != s else None


def g_grammar(rng):
    if rng.random() < 0.3:
        bad = ch(rng, HANDMADE_ERRORS)
    else:
        bad = None
        while bad is None:
            bad = corrupt(rng, ch(rng, CORRECT_SENTENCES))
        if rng.random() < 0.25:
            extra = None
            while extra is None:
                extra = corrupt(rng, ch(rng, CORRECT_SENTENCES))
            bad = bad.rstrip(".") + ". " + extra
    instr = ch(rng, [
        "Fix the grammar:", "Correct the spelling mistakes in this sentence:", "Proofread this:", "Can you fix this sentence?",
        "Please correct any errors in the following.", "Fix the typos.", "Rewrite this with correct grammar.",
        "Is this sentence grammatically correct? If not, fix it.", "Correct this for me:", "grammar check pls",
        "Edit this sentence so it's correct English.", "Fix spelling and punctuation only, don't change the meaning.",
        "What's wrong with this sentence?", "Make this grammatically correct:",
    ])
    return frame(rng, instr, bad), "grammar_fix"


TRANSLATE_SENTENCES = [
    "Where is the nearest pharmacy?", "I would like to book a table for two at eight o'clock.",
    "The train to the airport leaves every twenty minutes.", "Thank you very much for your help.",
    "My name is {name} and I work as a nurse.", "How much does this cost?", "I'm allergic to peanuts.",
    "Could you speak a little more slowly, please?", "We are going to the beach tomorrow.",
    "The museum is closed on Mondays.", "I lost my wallet on the bus.", "Happy birthday! I hope you have a wonderful day.",
    "Please turn off your phones during the performance.", "The meeting has been moved to Thursday afternoon.",
    "Is breakfast included in the price?", "I don't understand. Can you repeat that?", "The weather is lovely today.",
    "My flight has been delayed by two hours.", "Where can I buy a ticket?", "We need more chairs for the guests.",
    "Do you have this in a smaller size?", "I've been learning the piano for three years.", "Please leave your shoes at the door.",
    "The shop opens at nine and closes at six.", "Can I pay by card?", "It was nice to meet you.",
    "Our office is on the third floor.", "Don't forget to water the plants.", "The soup is too hot to eat.",
    "Keep left on the escalator.", "See you next week!", "I'll call you when I get home.", "Good luck with your exam!",
    "Children under five travel for free.", "The bathroom is at the end of the corridor.",
]
TRANSLATE_WORDS = ["good morning", "thank you", "cheese", "library", "I love you", "see you later", "excuse me",
                   "train station", "happy new year", "how are you?", "water", "welcome", "the bill, please", "left and right"]


def g_translate(rng):
    lang = ch(rng, LANGUAGES)
    r = rng.random()
    if r < 0.15:
        w = ch(rng, TRANSLATE_WORDS)
        text = ch(rng, [f"How do you say '{w}' in {lang}?", f"Translate \"{w}\" into {lang}.", f"What's '{w}' in {lang}?",
                        f"{w} in {lang}?", f"what is the {lang} word for {w}"])
        return text, "translate"
    if r < 0.3:
        src, srclang = ch(rng, FOREIGN)
        instr = ch(rng, ["Translate this into English:", "What does this mean in English?", f"Translate from {srclang} to English:",
                         "English please:", "Can you translate this for me?"])
        return frame(rng, instr, src), "translate"
    n = 1 if rng.random() < 0.6 else rng.randint(2, 3)
    body = " ".join(s.format(name=ch(rng, FIRST)) for s in sample(rng, TRANSLATE_SENTENCES, n))
    if rng.random() < 0.15:
        body, _ = any_passage(rng, allow_topic=False)
        if len(body) > 420:
            body = body[:body.find(".", 150) + 1] if body.find(".", 150) > 0 else body
    instr = ch(rng, [f"Translate into {lang}:", f"Translate the following into {lang}.", f"How would I say this in {lang}?",
                     f"Can you translate this to {lang}?", f"{lang} translation please:", f"Put this into {lang} for me.",
                     f"I need this in {lang}:", f"Translate to {lang}, keeping it informal."])
    return frame(rng, instr, body), "translate"


BLUNT = [
    "Send me the report now.", "Your invoice is late again.", "I can't come to your party.", "This code is a mess, redo it.",
    "We don't accept returns after 30 days.", "Stop parking in my space.", "You forgot to reply to my email.",
    "The meeting is cancelled.", "I need the money you owe me by Friday.", "Your presentation was too long.",
    "No, we can't give you a discount.", "Turn the music down, it's late.", "You didn't follow the instructions.",
    "Fix the bug before lunch.", "I'm not interested in your offer.", "Where are the files I asked for?",
    "Clean the kitchen after you use it.", "The price is going up next month.", "You're on the late shift all next week.",
    "Your application was rejected.", "I want a refund.", "We're out of stock.", "Stop sending me these messages.",
    "The deadline was yesterday.", "Bring your own laptop tomorrow.",
]
LONGISH = [
    "I just wanted to reach out and let you know that, due to a number of unforeseen circumstances that came up over the past few days, I am unfortunately not going to be able to attend the meeting that we had scheduled for Thursday afternoon.",
    "At this point in time we are currently in the process of reviewing all of the applications that we have received, and we will be in a position to get back to each and every applicant at some point in the near future.",
    "The reason why the shop is closed today is because of the fact that the staff members are all attending a training session that is taking place in another part of the city.",
    "In my personal opinion, I honestly think that the new timetable is actually a lot better than the old one that we used to have before.",
    "It has come to our attention that a number of residents have been leaving their bins out on the pavement for several days after collection.",
]
REWRITE_MODES = [
    ("Rewrite this more politely:", "rewrite_polite"), ("Make this sound more polite.", "rewrite_polite"),
    ("Can you soften this message?", "rewrite_polite"), ("Rephrase this so it sounds friendlier.", "rewrite_polite"),
    ("Make this more formal:", "rewrite_formal"), ("Rewrite in a professional tone.", "rewrite_formal"),
    ("Turn this into formal business English.", "rewrite_formal"), ("Make this more casual.", "rewrite_formal"),
    ("Make this shorter.", "rewrite_shorter"), ("Shorten this sentence.", "rewrite_shorter"),
    ("Say this in fewer words:", "rewrite_shorter"), ("Cut this down to one short sentence.", "rewrite_shorter"),
    ("Rewrite this in simpler words.", "rewrite_simpler"), ("Simplify this for a ten-year-old.", "rewrite_simpler"),
    ("Rewrite this in plain English.", "rewrite_simpler"), ("Paraphrase this.", "rewrite_simpler"),
    ("Change this to the passive voice.", "rewrite_simpler"), ("Put this in the past tense.", "rewrite_simpler"),
]


def g_rewrite(rng):
    instr, cat = ch(rng, REWRITE_MODES)
    if cat == "rewrite_shorter" and rng.random() < 0.6:
        body = ch(rng, LONGISH)
    elif rng.random() < 0.75:
        body = ch(rng, BLUNT)
        if rng.random() < 0.3:
            body = body + " " + ch(rng, BLUNT)
    else:
        body, _ = any_passage(rng, allow_topic=False)
        body = body.split("\n\n")[0] if "\n\n" in body else body
    instr = ch(rng, [instr, instr, "Could you " + instr[0].lower() + instr[1:].rstrip(".:") + "?",
                     "I'd like you to " + instr[0].lower() + instr[1:].rstrip(".:") + "."])
    return frame(rng, instr, body), "rewrite"


STEP_TEXTS = [
    "To make the dough, mix the flour and salt, add the water slowly, knead for ten minutes, then leave it to rest for an hour before shaping it.",
    "First unplug the router, wait thirty seconds, plug it back in, and then wait for the lights to turn green before reconnecting your laptop.",
    "Before the trip you need to renew your passport, book the hotel, buy travel insurance and tell your bank you'll be abroad.",
    "New staff should collect their badge from reception, set up their laptop with IT, read the safety guide and meet their buddy on the first day.",
    "The course covers budgeting basics, saving for emergencies, understanding credit scores and planning for retirement.",
    "For the picnic we need sandwiches, fruit, a blanket, sun cream, cold drinks and something to play with.",
    "The apartment has two bedrooms, a small balcony, a new kitchen, underfloor heating and a parking space in the basement.",
    "Please remember to lock the back door, switch off the lights, feed the cat and put the bins out on Tuesday night.",
    "To apply, fill in the online form, upload a copy of your ID, pay the fee and wait for a confirmation email.",
    "The phone has a bright screen, a long-lasting battery, two cameras, fast charging and a headphone jack.",
]


def g_bullets(rng):
    if rng.random() < 0.45:
        body = ch(rng, STEP_TEXTS)
    else:
        body, _ = any_passage(rng)
    instr = ch(rng, ["Turn this into bullet points.", "Convert this to a bulleted list:", "Make this a checklist.",
                     "List the main points as bullets.", "Can you put this into a short list?", "Bullet-point this please",
                     "Break this paragraph into bullet points.", "Rewrite as a numbered list."])
    return frame(rng, instr, body), "bullet_points"


def g_headline(rng):
    body, facts = any_passage(rng)
    if facts["topic"] == "personal email":
        instr = ch(rng, ["Suggest a subject line for this email.", "Give this email a short subject line.", "What would be a good subject line?"])
    else:
        instr = ch(rng, ["Write a headline for this.", "Suggest a short title for this paragraph.", "Give me a catchy title (under 8 words).",
                         "Come up with a headline.", "What would be a good title for this text?", "Title for this?",
                         "Write a newspaper-style headline for this story."])
    return frame(rng, instr, body), "headline"


def g_keywords(rng):
    body, _ = any_passage(rng)
    k = rng.randint(3, 6)
    instr = ch(rng, [f"Extract {k} keywords from this text.", "What are the main keywords here?", f"Give me {k} tags for this post.",
                     f"Suggest {k} hashtags for this.", "Pull out the key terms.", "List the important keywords, comma-separated."])
    return frame(rng, instr, body), "keywords"


def g_yesno(rng):
    body, facts = any_passage(rng)
    qs = []
    if facts["prices"]:
        qs += ["Does the text mention a price?", "Is there a cost mentioned?"]
    else:
        qs += ["Does this mention how much it costs?"]
    nm = ch(rng, FIRST)
    qs += [f"Is {nm} mentioned in this text?", "Is the tone of this message angry?", "Does this text include a phone number?",
           "Does it say when this will happen?", "Is this written in the first person?", "Is this about sport?"]
    if facts["places"]:
        qs.append(f"Is {ch(rng, facts['places'])} mentioned?")
    if facts["topic"] == "personal email":
        qs += ["Does the sender ask for a meeting?", "Is this email formal?"]
    q = ch(rng, qs)
    instr = ch(rng, [q, f"Answer yes or no: {q}", f"{q} Just yes or no.", f"Based on the text, {q[0].lower() + q[1:]}"])
    return frame(rng, instr, body), "yes_no_question"


def g_passage_qa(rng):
    body, facts = any_passage(rng, allow_topic=rng.random() < 0.5)
    t = facts["topic"]
    qs = {
        "event": ["When does it start?", "Where is the event being held?", "How much are tickets?", "Who is organising it?"],
        "local politics": ["How much will the plan cost?", "Who proposed the plan?", "What did the council vote on?", "How did the vote go?"],
        "business": ["What did the company announce?", "Where is the company based?", "Who is the chief executive?", "How many people work there?"],
        "personal email": ["What is the sender asking for?", "Who wrote this email?", "What day do they want to meet?"],
        "travel": ["Where did they stay?", "How did they get there?", "What did they eat?", "How much was the hotel?"],
        "product": ["How much does it cost?", "What colours does it come in?", "Name one feature of the product."],
        "work meeting": ["Who is preparing what?", "When is the next meeting?", "What is the budget?"],
        "job advert": ["What job is being advertised?", "What's the salary?", "What's the deadline to apply?"],
        "school notice": ["Why is the school closing?", "When does the school reopen?", "Who should parents contact?"],
    }.get(t, ["According to the text, what is the main idea?", "What is one fact mentioned in the paragraph?",
              "Based on the passage, what is this paragraph mostly about?", f"What does the text say about {t}?"])
    q = ch(rng, qs)
    layout = rng.randrange(3)
    if layout == 0:
        return f"{body}\n\nQuestion: {q}", "closed_qa"
    if layout == 1:
        return f"Read this and answer the question.\n\n{body}\n\n{q}", "closed_qa"
    return f"{q}\n\n{body}", "closed_qa"


def g_json(rng):
    name = person(rng)
    age = rng.randint(19, 78)
    city, country = ch(rng, CITIES)
    email = rand_email(rng, name)
    kind = rng.randrange(5)
    if kind == 0:
        body = f"Name: {name}\nAge: {age}\nCity: {city}\nEmail: {email}"
        instr = ch(rng, ["Convert this to JSON.", "Turn these details into a JSON object.", "Output this as JSON:", "JSON please:"])
    elif kind == 1:
        body = f"{name} is {age} years old and lives in {city}, {country}. You can reach them at {email}."
        instr = ch(rng, ["Put this into JSON with keys name, age, city and email.", "Make a JSON object from this sentence.",
                         "Extract name, age and city as JSON."])
    elif kind == 2:
        prod, catg = ch(rng, PRODUCTS)
        price = rand_price(rng, 10, 500)
        body = f"product: {prod}; category: {catg}; price: {price}; in stock: {ch(rng, ['yes', 'no'])}"
        instr = ch(rng, ["Format this as a JSON object.", "Turn this into JSON.", "Convert these fields into JSON, using snake_case keys."])
    elif kind == 3:
        rows = [(person(rng), rng.randint(50, 100)) for _ in range(rng.randint(2, 4))]
        body = "\n".join(f"{n}, {s}" for n, s in rows)
        instr = ch(rng, ["Turn this CSV into a markdown table with headers Name and Score.", "Convert these lines into a JSON array of objects with name and score.",
                         "Format this as a table.", "Make this into a CSV with a header row."])
    else:
        date = rand_date(rng, with_year=True)
        ev = ch(rng, EVENTS)
        body = f"{cap(ev)} on {date} at {ch(rng, VENUES)}, organised by {name}."
        instr = ch(rng, ["Convert this into a JSON object with fields event, date, venue and organiser.", "Represent this event as JSON.",
                         "Give me this as YAML."])
    return frame(rng, instr, body), "format_conversion"


def g_reply(rng):
    if rng.random() < 0.5:
        body, _ = passage_email(rng)
    else:
        body = ch(rng, [
            "Hey! Are you coming to dinner on Saturday?", "Can you cover my shift on Tuesday?", "Do you want to split a taxi to the airport?",
            "We're thinking of going hiking this weekend, you in?", "Hi, just checking whether you received the parcel.",
            "Hello, we'd like to invite you for a second interview next Monday at 10am.", "Movie tonight?",
            "Could you send me the slides from today's talk?", "Is the flat still available to view?",
            "The team is going for drinks after work on Friday!", "Hi, your car is ready to collect from the garage.",
        ])
    what = ch(rng, [
        "saying I can't make it on Tuesday", "saying yes and thanking them", "politely declining", "saying I'm running 10 minutes late",
        "asking if we can move it to Thursday", "confirming the time", "saying I'll get back to them tomorrow",
        "saying I'm sick and can't come", "accepting and asking what I should bring", "saying thanks, I got it",
    ])
    instr = ch(rng, [f"Write a short reply {what}.", f"Reply to this {what}.", f"Draft a quick response {what}.",
                     f"Help me answer this message, {what}.", f"Write a two-sentence reply {what}.", f"Text back {what}."])
    return frame(rng, instr, body), "short_reply"


COUNTRIES = ["Portugal", "Canada", "Kenya", "Peru", "Norway", "Vietnam", "Egypt", "Australia", "Argentina", "Japan",
             "Poland", "Ghana", "Thailand", "Chile", "Hungary", "Morocco", "New Zealand", "Ireland", "Turkey", "Colombia",
             "Finland", "India", "Greece", "Mexico", "South Korea", "Austria", "Nigeria", "Indonesia", "Switzerland", "Cuba",
             "Iceland", "Nepal", "Brazil", "Sweden", "Croatia", "Philippines", "Ethiopia", "Uruguay", "Belgium", "Malaysia"]
BOOKS = ["Pride and Prejudice", "Moby-Dick", "One Hundred Years of Solitude", "Things Fall Apart", "War and Peace",
         "The Great Gatsby", "Don Quixote", "Jane Eyre", "Frankenstein", "The Odyssey", "Hamlet", "Beloved",
         "The Little Prince", "1984", "To Kill a Mockingbird", "Crime and Punishment", "The Hobbit", "Wuthering Heights",
         "Les Misérables", "The Catcher in the Rye", "Dracula", "Middlemarch", "The Handmaid's Tale", "Anna Karenina"]
PAINTINGS = ["the Mona Lisa", "The Starry Night", "Guernica", "The Persistence of Memory", "Girl with a Pearl Earring",
             "The Birth of Venus", "The Scream", "Water Lilies", "The Night Watch", "American Gothic"]
ELEMENTS = ["gold", "iron", "sodium", "potassium", "silver", "lead", "tin", "copper", "helium", "mercury", "oxygen", "carbon", "calcium", "neon"]
SYMBOLS = ["Au", "Fe", "Na", "K", "Ag", "Pb", "Cu", "He", "Hg", "Zn", "Cl"]
ANIMALS = ["kangaroo", "owl", "elephant", "dolphin", "giraffe", "koala", "frog", "swan", "horse", "bear", "deer", "goat", "seal", "fox"]
FIXED_FACT_QS = [
    "Which planet is closest to the Sun?", "What is the largest ocean on Earth?", "How many continents are there?",
    "How many bones are in the adult human body?", "What gas do plants absorb from the air?", "Who invented the telephone?",
    "What is the boiling point of water in Fahrenheit?", "How many sides does a hexagon have?", "What is the tallest mountain in Africa?",
    "Which is the longest river in South America?", "What is the hardest natural substance?", "Who was the first person to walk on the Moon?",
    "How many players are on a football team?", "What year did the Berlin Wall fall?", "What does DNA stand for?",
    "What's the largest planet in our solar system?", "What is the freezing point of water in Celsius?", "Who discovered penicillin?",
    "What is the smallest prime number?", "How many minutes are in a day?", "What colour do you get by mixing blue and yellow?",
    "What is the main language spoken in Brazil?", "Which instrument has 88 keys?", "How many strings does a standard guitar have?",
    "What is the square root of 144?", "What does HTML stand for?", "Which organ pumps blood around the body?",
    "What is the largest desert in the world?", "How many legs does a spider have?", "Who developed the theory of relativity?",
    "Which country has the largest population?", "What is the chemical formula for water?", "What's the capital of Australia?",
    "Which metal is liquid at room temperature?", "How many days are in a leap year?", "Who was Cleopatra?",
    "What is the currency of the UK?", "What is the speed of light, roughly?", "What's the longest bone in the human body?",
    "Which planet is known as the Red Planet?", "How many hours of sleep do adults need?", "When did World War II end?",
    "What is the biggest animal that has ever lived?", "What is the national animal of Scotland?", "Who composed the Four Seasons?",
    "Which language has the most native speakers?", "How many time zones does Russia have?", "What is a group of crows called?",
    "What is the official language of Egypt?", "Where are the Andes?", "What is the most spoken language in India?",
    "Which vitamin do we get from sunlight?", "How long does it take light from the Sun to reach Earth?", "Who founded Microsoft?",
    "What does CPU stand for?", "How many teaspoons are in a tablespoon?", "What is the plural of cactus?",
]


def g_factual(rng):
    r = rng.random()
    if r < 0.45:
        return ch(rng, FIXED_FACT_QS), "factual_qa"
    c = ch(rng, COUNTRIES)
    b = ch(rng, BOOKS)
    a = ch(rng, ANIMALS)
    qs = [
        f"What is the capital of {c}?", f"What's the capital city of {c}?", f"Capital of {c}?", f"Which city is the capital of {c}?",
        f"What currency is used in {c}?", f"What language do people speak in {c}?", f"Which continent is {c} in?",
        f"Who wrote {b}?", f"Who is the author of {b}?", f"When was {b} published?", f"Who painted {ch(rng, PAINTINGS)}?",
        f"What is the chemical symbol for {ch(rng, ELEMENTS)}?", f"Which element has the symbol {ch(rng, SYMBOLS)}?",
        f"What do {a}s eat?", f"How long do {a}s usually live?", f"What is a baby {a} called?", f"Where do {a}s live in the wild?",
        f"What's the population of {c}, roughly?", f"What is the highest mountain in {c}?", f"What time zone is {c} in?",
    ]
    return ch(rng, qs), "factual_qa"


DEF_WORDS = ["ubiquitous", "ephemeral", "serendipity", "pragmatic", "meticulous", "ambiguous", "candid", "resilient", "obsolete",
             "frugal", "gregarious", "nostalgia", "benevolent", "tenacious", "verbose", "mundane", "lucid", "placid", "eloquent",
             "sporadic", "hubris", "empathy", "irony", "metaphor", "procrastinate", "itinerary", "deadline", "jargon", "gist", "quorum"]
DEF_CONCEPTS = ["a mortgage", "a black hole", "inflation", "an API", "a haiku", "a noun", "photosynthesis", "a budget deficit",
                "a firewall", "a sonnet", "compound interest", "a carbon footprint", "a podcast", "a VPN", "an allergy",
                "a thesaurus", "a hurricane", "a mammal", "an invoice", "a pension", "a cover letter", "a spreadsheet",
                "gross domestic product", "a browser cookie", "a probiotic", "a calorie", "an adjective", "a time zone"]


def g_definition(rng):
    if rng.random() < 0.5:
        w = ch(rng, DEF_WORDS)
        q = ch(rng, [f"What does '{w}' mean?", f"Define {w}.", f"What is the meaning of the word {w}?", f"{w} meaning?",
                     f"Give me a simple definition of \"{w}\".", f"What does {w} mean in plain English?",
                     f"Use '{w}' in a sentence.", f"Is '{w}' a positive or negative word?"])
    else:
        c = ch(rng, DEF_CONCEPTS)
        q = ch(rng, [f"What is {c}?", f"Explain {c} in one sentence.", f"Can you define {c} briefly?", f"What's {c}, in simple terms?",
                     f"Quick definition of {c[2:] if c.startswith('a ') else c}?"])
    return q, "definition"


SYN_WORDS = ["happy", "big", "fast", "difficult", "ancient", "brave", "tired", "angry", "beautiful", "quiet", "smart", "rich",
             "cold", "strange", "important", "funny", "shy", "generous", "calm", "begin", "help", "buy", "show", "improve", "increase",
             "honest", "weak", "early", "narrow", "polite"]


def g_synonym(rng):
    w = ch(rng, SYN_WORDS)
    n = rng.randint(2, 5)
    q = ch(rng, [f"Give me a synonym for '{w}'.", f"What's the opposite of '{w}'?", f"What is an antonym of {w}?",
                 f"List {n} synonyms for \"{w}\".", f"Another word for {w}?", f"What's a fancier word for {w}?",
                 f"Give me {n} words that mean {w}.", f"antonym of {w}", f"Which word means the opposite of {w}: {ch(rng, SYN_WORDS)} or {ch(rng, SYN_WORDS)}?"])
    return q, "synonym_antonym"


SPELL_WORDS = [("necessary", "neccessary"), ("accommodate", "acommodate"), ("rhythm", "rythm"), ("separate", "seperate"),
               ("definitely", "definately"), ("embarrass", "embarass"), ("occurrence", "occurence"), ("millennium", "millenium"),
               ("conscience", "concience"), ("bureaucracy", "beaurocracy"), ("questionnaire", "questionaire"), ("liaison", "liason"),
               ("restaurant", "restaraunt"), ("February", "Febuary"), ("Wednesday", "Wensday"), ("receipt", "reciept"),
               ("privilege", "priviledge"), ("guarantee", "garantee"), ("calendar", "calender"), ("tomorrow", "tommorow")]
PLURALS = ["mouse", "child", "cactus", "sheep", "analysis", "tooth", "person", "criterion", "leaf", "potato", "wolf", "phenomenon"]
VERBS = ["swim", "bring", "catch", "lie", "teach", "fly", "choose", "seek", "bear", "dive", "forbid", "weave"]


def g_spelling(rng):
    good, bad = ch(rng, SPELL_WORDS)
    q = ch(rng, [f"How do you spell {good}?", f"Is '{bad}' spelled correctly?", f"Which is correct: '{good}' or '{bad}'?",
                 f"Which is correct: '{bad}' or '{good}'?", f"spell {good} for me", f"Is it {bad} or {good}?",
                 f"What's the plural of {ch(rng, PLURALS)}?", f"What's the past tense of {ch(rng, VERBS)}?",
                 f"Is it 'affect' or 'effect' in this sentence: 'The rain will {ch(rng, ['affect', 'effect'])} our plans'?",
                 f"How many syllables are in '{good}'?", f"What's the past participle of {ch(rng, VERBS)}?"])
    return q, "spelling_grammar"


UNIT_FIXED = ["How many ounces are in a pound?", "How many centimetres are in an inch?", "How many feet are in a mile?",
              "How many millilitres are in a litre?", "How many grams in a kilogram?", "How many seconds are in an hour?",
              "How many cups are in a quart?", "How many metres are in a kilometre?", "How many pints are in a gallon?",
              "How many days are in three weeks?", "How many inches in a foot?", "How many bytes are in a kilobyte?"]


def g_units(rng):
    if rng.random() < 0.25:
        return ch(rng, UNIT_FIXED), "unit_conversion"
    n = ch(rng, [rng.randint(2, 20), rng.randint(20, 200), round(rng.uniform(1.5, 50), 1)])
    pair = ch(rng, [("km", "miles"), ("miles", "kilometres"), ("kg", "pounds"), ("pounds", "kilograms"), ("litres", "gallons"),
                    ("inches", "centimetres"), ("feet", "metres"), ("metres", "feet"), ("ounces", "grams"), ("cups", "millilitres"),
                    ("hours", "minutes"), ("minutes", "seconds"), ("days", "hours"), ("GB", "MB"), ("acres", "hectares")])
    t = rng.randint(-10, 40)
    f = rng.randint(20, 110)
    q = ch(rng, [f"Convert {n} {pair[0]} to {pair[1]}.", f"How many {pair[1]} is {n} {pair[0]}?", f"{n} {pair[0]} in {pair[1]}?",
                 f"What is {t}°C in Fahrenheit?", f"What's {f} degrees Fahrenheit in Celsius?", f"convert {n} {pair[0]} into {pair[1]} please",
                 f"Roughly how many {pair[1]} are in {n} {pair[0]}?"])
    return q, "unit_conversion"


def g_arith(rng):
    a, b = rng.randint(2, 99), rng.randint(2, 99)
    big1, big2 = rng.randint(100, 9999), rng.randint(100, 9999)
    p = ch(rng, [5, 10, 12, 15, 20, 25, 30, 40, 50, 75])
    x = ch(rng, [40, 60, 80, 120, 150, 200, 250, 360, 480, 1200])
    q = ch(rng, [
        f"What is {p}% of {x}?", f"What's {a} times {b}?", f"What is {big1} + {big2}?", f"{big1} minus {big2}?",
        f"What's {a * b} divided by {b}?", f"Calculate {a} x {b}.", f"What is {a} squared?", f"What's the square root of {a * a}?",
        f"Round {rng.uniform(1, 100):.4f} to two decimal places.", f"Is {rng.randint(10, 999)} even or odd?",
        f"What is {ch(rng, ['1/4', '3/4', '2/5', '1/8', '7/10'])} as a decimal?", f"What's {ch(rng, ['0.25', '0.6', '0.125', '0.05'])} as a percentage?",
        f"What is ${a} \\times {b}$?", f"Compute ${big1} + {big2}$.", f"{a}*{b}=?", f"what's {a}+{b}",
        f"What is half of {x}?", f"Double {big1}.", f"What's {x} plus {p} percent?", f"Is {a} bigger than {b}?",
    ])
    return q, "simple_arithmetic"


def g_one_step(rng):
    n = rng.randint(2, 12)
    m = rng.randint(1, n - 1) if n > 1 else 1
    price = rng.randint(2, 40)
    nm = ch(rng, FIRST)
    h = rng.randint(1, 11)
    mins = ch(rng, [15, 20, 25, 35, 40, 45, 50])
    q = ch(rng, [
        f"I have {n} cookies and give {m} to my sister. How many are left?",
        f"A ticket costs ${price}. How much do {n} tickets cost?",
        f"If a train leaves at {h}:00 and the trip takes {mins} minutes, what time does it arrive?",
        f"{nm} has {n * 3} stickers and shares them equally with two friends, so three people in total. How many does each person get?",
        f"There are {n} boxes with {m + 2} pens in each. How many pens is that?",
        f"My rent is ${price * 50} a month. How much is that per year?",
        f"The shop closes at {h + 6} and it's {h + 4} now. How many hours do I have?",
        f"I ran {n} km on Monday and {m} km on Tuesday. How far did I run in total?",
        f"A recipe needs {n} eggs per cake. How many eggs for 2 cakes?",
        f"If I save ${price} a week, how much will I have after {n} weeks?",
        f"The temperature was {n} degrees this morning and it's {n + m} now. How much did it rise?",
        f"A pizza has {n * 2} slices and we ate {m}. How many slices are left?",
    ])
    return q, "one_step_word_problem"


SORT_WORDS = ["banana", "cherry", "apple", "kiwi", "mango", "grape", "lemon", "peach", "plum", "fig", "melon", "orange",
              "zebra", "otter", "lynx", "badger", "heron", "moose", "walrus", "tiger"]


def g_listops(rng):
    nums = [rng.randint(1, 200) for _ in range(rng.randint(4, 8))]
    words = sample(rng, SORT_WORDS, rng.randint(4, 7))
    w = ch(rng, SORT_WORDS + DEF_WORDS)
    sent = ch(rng, CORRECT_SENTENCES)
    fa, fb = round(rng.uniform(0, 1), 2), round(rng.uniform(0, 1), 2)
    q = ch(rng, [
        f"Sort these words alphabetically: {', '.join(words)}", f"Put these numbers in order from smallest to largest: {', '.join(map(str, nums))}",
        f"Which is larger: {fa} or {fb}?", f"What's the largest number in this list: {', '.join(map(str, nums))}?",
        f"Count the vowels in '{w}'.", f"How many words are in this sentence: \"{sent}\"", f"Reverse the word '{w}'.",
        f"What's the first letter of each word in \"{sent}\"?", f"Remove the duplicates from this list: {', '.join(map(str, nums + nums[:2]))}",
        f"Which of these is a fruit: {', '.join(sample(rng, ['carrot', 'tomato', 'potato', 'pear', 'onion', 'lettuce'], 3))}?",
        f"Which word is the odd one out: {', '.join(words[:3])}, {ch(rng, ['table', 'river', 'violin', 'Tuesday'])}?",
        f"Put these in reverse alphabetical order: {', '.join(words)}", f"What's the sum of {', '.join(map(str, nums[:3]))}?",
        f"Capitalise every word in: {sent.lower()}",
    ])
    return q, "list_ops"


CHITCHAT = [
    "Hi there!", "Good morning, how are you?", "Tell me a joke.", "What's your favourite colour?", "Thanks, that helped a lot!",
    "Hello! Who am I talking to?", "Are you a robot?", "Good night!", "lol that's hilarious", "ok thanks", "You're awesome.",
    "I'm bored.", "Tell me something interesting.", "How's your day going?", "What should I call you?", "Do you like music?",
    "Bye for now!", "Nice to meet you.", "Can you keep me company for a bit?", "What can you do?", "Who made you?",
    "Do you dream?", "Happy Friday!", "I'm so tired today.", "Tell me a fun fact.", "Cheer me up please", "Say something nice.",
    "Hey, what's up?", "Yo", "Morning!", "Sup?", "Hiya :)", "That's all, thank you.", "Never mind.", "Sorry, wrong chat.",
    "Do you have a name?", "Are you smarter than me?", "What's your favourite food?", "How old are you?", "Where do you live?",
    "Merry Christmas!", "Happy new year!!", "I just got a puppy!", "I passed my driving test today!", "Guess what?",
    "Can you tell me a riddle?", "Knock knock.", "What's the weather like where you are?", "Do you ever get tired?",
    "Good afternoon. I hope you are well.", "Hello again.", "Thank you so much, you're a lifesaver.", "Just saying hi.",
    "Bonjour !", "Hola, ¿qué tal?", "Ciao!", "What do you do for fun?", "Can we be friends?", "Are you there?",
    "Tell me a knock-knock joke.", "Flip a coin for me.", "Roll a die.", "Pick a number between 1 and 10.",
    "Say hello to my mum, she's next to me.", "I'm {name}, nice to meet you!", "Hi, I'm {name}. How are you?",
    "Good morning from {city}!", "Greetings from {city}.",
]


def g_chitchat(rng):
    city, _ = ch(rng, CITIES)
    t = ch(rng, CHITCHAT).format(name=ch(rng, FIRST), city=city)
    if rng.random() < 0.3:
        t = t + " " + ch(rng, CHITCHAT).format(name=ch(rng, FIRST), city=city)
    return t, "chit_chat"


HOWTO = [
    "How long do I boil an egg for a runny yolk?", "What's a good substitute for buttermilk?", "How do I get red wine out of a carpet?",
    "What temperature should I bake chicken breasts at?", "How often should I water a cactus?", "How do I take a screenshot on a Mac?",
    "What's the keyboard shortcut to undo?", "How do I tie a tie?", "What should I pack for a weekend at the beach?",
    "How do I unfreeze a frozen pipe?", "Can I freeze cooked rice?", "How long does cooked chicken keep in the fridge?",
    "How do I reset my router?", "What's the best way to clean a cast iron pan?", "How do I cut an onion without crying?",
    "How can I fall asleep faster?", "How do I remove a splinter?", "Should I tip in {country}?", "What plug type does {country} use?",
    "Do I need a visa to visit {country}?", "How do I change the time on my oven clock?", "How do I check my tyre pressure?",
    "What's the best time of day to water plants?", "How do I stop my glasses from fogging up?", "How do I iron a shirt?",
    "What can I use instead of eggs in pancakes?", "How long should I steep green tea?", "How do I soften hard brown sugar?",
    "How do I make my phone battery last longer?", "What's a quick way to cool down a drink?", "How do I get rid of fruit flies?",
    "List the steps to jump-start a car.", "Step by step, how do I make a cup of pour-over coffee?", "How do I sew on a button?",
    "What should I do if I get stung by a bee?", "How do I clean a microwave?", "How do you say no politely to a coworker?",
]


def g_howto(rng):
    return ch(rng, HOWTO).format(country=ch(rng, COUNTRIES)), "everyday_howto"


BUSINESSES = ["coffee shop", "bakery", "dog-walking business", "bike repair shop", "yoga studio", "podcast about history",
              "food truck", "bookshop", "cleaning company", "tutoring service", "plant shop", "board game café"]
HAIKU_TOPICS = ["autumn leaves", "rain on a window", "the sea", "a sleepy cat", "Monday mornings", "snow", "the first cup of coffee",
                "city lights", "a garden", "spring"]


def g_short_creative(rng):
    n = rng.randint(3, 6)
    q = ch(rng, [
        f"Suggest {n} names for a {ch(rng, BUSINESSES)}.", f"Write a one-line caption for a photo of {ch(rng, HAIKU_TOPICS)}.",
        f"Give me a word that rhymes with '{ch(rng, ['cat', 'light', 'blue', 'cake', 'song', 'day', 'heart', 'rain'])}'.",
        f"Write a haiku about {ch(rng, HAIKU_TOPICS)}.", f"Give me a fun fact about {ch(rng, ANIMALS)}s.",
        f"Suggest a name for my {ch(rng, ['cat', 'dog', 'goldfish', 'hamster', 'houseplant', 'car'])}.",
        f"Write a short birthday message for my {ch(rng, RELS)}.", "Give me a motivational quote.",
        f"Write a one-sentence description of {ch(rng, BRANDS)}'s new {ch(rng, PRODUCTS)[0]}.",
        f"Come up with a slogan for a {ch(rng, BUSINESSES)}.", f"Suggest a title for my playlist of {ch(rng, ['rainy day', 'workout', 'road trip', 'study', '80s'])} songs.",
        f"Write a thank-you note to my {ch(rng, RELS)} for the gift, two sentences max.",
        f"Give me {n} ideas for a birthday present for someone who likes {ch(rng, ['fishing', 'cooking', 'gardening', 'video games', 'reading', 'running'])}.",
        f"What's a good name for a {ch(rng, ['fantasy', 'pirate', 'space'])} character?", "Tell me a short riddle.",
        f"Give me an emoji that represents {ch(rng, HAIKU_TOPICS)}.", f"Write a limerick about a {ch(rng, ANIMALS)}.",
    ])
    return q, "short_creative"


CODE_SNIPPETS_ID = [
    "fn main() {\n    println!(\"hello\");\n}", "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"hi\") }",
    "def greet(name):\n    return f\"Hello, {name}\"", "SELECT name FROM users WHERE age > 30;",
    "console.log([1, 2, 3].map(x => x * 2));", "#include <iostream>\nint main() { std::cout << 42; }",
    "public class Main { public static void main(String[] a) { System.out.println(1); } }",
    "<ul>\n  <li>Milk</li>\n  <li>Eggs</li>\n</ul>", "echo \"$HOME\"", "puts 'hello world'",
    "body { margin: 0; color: #333; }", "let total = items.reduce((a, b) => a + b, 0);",
]


def g_code_lookup(rng):
    if rng.random() < 0.5:
        snip = ch(rng, CODE_SNIPPETS_ID)
        fence = rng.random() < 0.6
        body = f"```\n{snip}\n```" if fence else snip
        instr = ch(rng, ["What programming language is this?", "Which language is this snippet written in?",
                         "Identify the language of this code:", "Is this Python or JavaScript?", "What language is this, just the name?"])
        return frame(rng, instr, body), "identify_code_language"
    name = person(rng)
    city, country = ch(rng, CITIES)
    obj = {"id": rng.randint(1, 9999), "name": name, "city": city, "active": rng.random() < 0.5, "tags": sample(rng, ["vip", "new", "beta", "staff", "trial"], 2)}
    body = json.dumps(obj, ensure_ascii=False, indent=ch(rng, [None, 2]))
    key = ch(rng, list(obj))
    instr = ch(rng, [f"What is the value of \"{key}\" in this JSON?", f"From this JSON, what's the {key}?", "Is this valid JSON?",
                     "How many keys does this object have?", f"Extract the {key} field."])
    if rng.random() < 0.5:
        body = f"```json\n{body}\n```"
    return frame(rng, instr, body), "json_lookup"


def long_minutes(rng, target):
    team = ch(rng, TEAMS)
    date = rand_date(rng, with_year=True)
    people = sample(rng, FIRST, rng.randint(4, 7))
    lines = [f"{cap(team)} team meeting: minutes", f"Date: {date}", f"Attendees: {', '.join(people)}", ""]
    i = 1
    while word_count("\n".join(lines)) < target:
        p1, p2 = sample(rng, people, 2)
        proj = ch(rng, PROJECTS)
        lines.append(f"{i}. {cap(proj)}")
        lines.append(f"{p1} gave an update: {ch(rng, MEETING_STATUS)}. {p2} asked whether {ch(rng, ['the timeline is still realistic', 'we need extra help', 'the budget covers it', 'customers have been told'])}. "
                     f"The group agreed that {p1} will {ch(rng, MEETING_TASKS)} by {rand_date(rng, with_year=False)}, and {p2} will {ch(rng, MEETING_TASKS)}.")
        if rng.random() < 0.5:
            lines.append(f"Budget noted: {rand_price(rng, 500, 50000)}.")
        lines.append("")
        i += 1
    lines.append(f"Next meeting: {MONTHS[rng.randrange(12)]} {rng.randint(1, 28)} at {rand_time(rng)}.")
    return "\n".join(lines)


def long_newsletter(rng, target):
    month = ch(rng, MONTHS)
    parts = [ch(rng, [f"Neighbourhood newsletter, {month}", f"{month} community update", f"What's on this {month}"])]
    while word_count("\n\n".join(parts)) < target:
        f = ch(rng, [passage_event, passage_council, passage_school, passage_job, passage_event])
        t, _ = f(rng)
        parts.append(t)
    parts.append(ch(rng, ["That's all for this month. See you around!", "Send your news to the editor by the 20th.", "Thanks for reading."]))
    return "\n\n".join(parts)


def long_diary(rng, target):
    parts = []
    day = 1
    while word_count("\n\n".join(parts)) < target:
        t, _ = passage_travel(rng)
        parts.append(f"Day {day}. {t}")
        day += 1
    return "\n\n".join(parts)


def long_thread(rng, target):
    parts = []
    while word_count("\n\n----\n\n".join(parts)) < target:
        t, _ = passage_email(rng)
        parts.append(t)
    return "\n\n----\n\n".join(parts)


def long_review(rng, target):
    dom = ch(rng, list(REVIEW_DOMAINS))
    d = REVIEW_DOMAINS[dom]
    thing = ch(rng, d["things"])
    pol = ch(rng, ["pos", "neg", "mix"])
    paras = [ch(rng, d["intro"]).format(thing=thing, rel=ch(rng, RELS)) + " " + ch(rng, [
        "I don't usually write reviews, but I felt I had to this time.", "I read a lot of reviews before choosing, so here's mine.",
        "Long review incoming, sorry.", "Here are my thoughts after some time with it."])]
    pool = d["pos"] + d["mix"] + d["neg"] if pol == "mix" else d[pol] + d["mix"][:1]
    fillers = ["To be fair, expectations were high.", "A friend had recommended it, which is why I tried it.",
               "I compared it with two alternatives first.", "The price was in the middle of the range.",
               "We went back a second time to be sure.", "My family had the same impression.", "I'll update this if anything changes.",
               "Overall that sums up my experience.", "For context, I'm fairly picky about these things."]
    while word_count(" ".join(paras)) < target:
        s = sample(rng, pool, min(len(pool), rng.randint(2, 3))) + sample(rng, fillers, 2)
        rng.shuffle(s)
        paras.append(" ".join(s))
    return "\n\n".join(paras)


def long_topics(rng, target):
    picks = sample(rng, TOPIC_PARAS, 6)
    out = []
    for topic, para in picks:
        out.append(para)
        if word_count("\n\n".join(out)) >= target:
            break
    return "\n\n".join(out)


def g_long_simple(rng):
    target = rng.randint(150, 560)
    kind = rng.randrange(6)
    doc = [long_minutes, long_newsletter, long_diary, long_thread, long_review, long_topics][kind](rng, target)
    instrs = ["Summarise this in one sentence.", "List every date mentioned.", "Extract all the names of people.",
              "What is this document about? One line please.", "Give this a short title.", "TL;DR?",
              "Pull out any email addresses or phone numbers.", "Find every amount of money mentioned.",
              "What's the overall tone of this?", "Translate the first sentence into Spanish.",
              "How many separate items are there?", "Which cities are mentioned?", "Is there anything about a budget in here? Yes or no.",
              "Give me three keywords for this.", "Summarize in under 20 words.", "Who wrote this?",
              "Just tell me the main point.", "List the people and what each of them has to do.",
              "Turn this into a few bullet points.", "Write a subject line for this."]
    if kind == 4:
        instrs += ["Is this review positive or negative?", "How many stars do you think the reviewer gave?", "Would this person recommend it?"]
    instr = ch(rng, instrs)
    cat = "long_" + ["minutes", "newsletter", "diary", "email_thread", "review", "article"][kind]
    return frame(rng, instr, doc), cat


# ---------------------------------------------------------------------------
# COMPLEX generators
# ---------------------------------------------------------------------------

# (statement, latex-ish statement or None, induction-friendly)
PROOF_FIXED = [
    ("there are infinitely many prime numbers", None, False),
    ("there are infinitely many primes of the form 4k + 3", None, False),
    ("if p is a prime greater than 3, then p^2 - 1 is divisible by 24", "if $p > 3$ is prime then $24 \\mid p^2 - 1$", False),
    ("gcd(a, b) = gcd(b, a mod b) for positive integers a and b", "$\\gcd(a,b) = \\gcd(b, a \\bmod b)$", False),
    ("every integer greater than 1 can be written as a product of primes", None, True),
    ("the prime factorisation of an integer greater than 1 is unique up to order", None, False),
    ("if n^2 is even then n is even", "if $n^2$ is even then $n$ is even", False),
    ("1 + 3 + 5 + ... + (2n - 1) = n^2 for every positive integer n", "$\\sum_{k=1}^{n} (2k-1) = n^2$", True),
    ("1^2 + 2^2 + ... + n^2 = n(n + 1)(2n + 1)/6", "$\\sum_{k=1}^{n} k^2 = \\frac{n(n+1)(2n+1)}{6}$", True),
    ("1^3 + 2^3 + ... + n^3 = (n(n + 1)/2)^2", "$\\sum_{k=1}^{n} k^3 = \\left(\\frac{n(n+1)}{2}\\right)^2$", True),
    ("F_1 + F_2 + ... + F_n = F_{n+2} - 1, where F_n are the Fibonacci numbers", None, True),
    ("consecutive Fibonacci numbers are coprime", None, True),
    ("2^n > n^2 for every integer n >= 5", "$2^n > n^2$ for all $n \\ge 5$", True),
    ("n! > 2^n for every integer n >= 4", "$n! > 2^n$ for $n \\ge 4$", True),
    ("3^n > n^3 for every integer n >= 4", "$3^n > n^3$ for all integers $n \\geq 4$", True),
    ("n! >= 3^n for every integer n >= 7", None, True),
    ("every positive integer can be written as a sum of distinct powers of 2", None, True),
    ("the harmonic series 1 + 1/2 + 1/3 + ... diverges", "$\\sum_{n \\ge 1} 1/n$ diverges", False),
    ("the decimal expansion of every rational number eventually repeats", None, False),
    ("there are infinitely many Pythagorean triples", None, False),
    ("sqrt(2) + sqrt(3) is irrational", "$\\sqrt{2} + \\sqrt{3}$ is irrational", False),
    ("e is irrational", "$e$ is irrational", False),
    ("for non-negative reals a and b, (a + b)/2 >= sqrt(ab)", "$\\frac{a+b}{2} \\ge \\sqrt{ab}$ for $a, b \\ge 0$", False),
    ("for non-negative reals a, b and c, (a + b + c)/3 >= (abc)^(1/3)", None, False),
    ("for positive reals a and b, a/b + b/a >= 2", "$\\frac{a}{b} + \\frac{b}{a} \\ge 2$ for $a, b > 0$", False),
    ("the Cauchy-Schwarz inequality holds for vectors in R^n", "$|\\langle u, v\\rangle| \\le \\|u\\|\\,\\|v\\|$", False),
    ("(1 + x)^n >= 1 + nx for every real x >= -1 and every positive integer n", "$(1+x)^n \\ge 1 + nx$ for $x \\ge -1$", True),
    ("a^2 + b^2 + c^2 >= ab + bc + ca for all real a, b, c", "$a^2+b^2+c^2 \\ge ab+bc+ca$", False),
    ("|x + y| <= |x| + |y| for all real numbers x and y", None, False),
    ("ln(1 + x) <= x for every x > -1", "$\\ln(1+x) \\le x$ for $x > -1$", False),
    ("e^x >= 1 + x for every real x", "$e^x \\ge 1 + x$ for all $x \\in \\mathbb{R}$", False),
    ("sin x <= x for every x >= 0", "$\\sin x \\le x$ for $x \\ge 0$", False),
    ("the angles of a triangle add up to 180 degrees", None, False),
    ("the base angles of an isosceles triangle are equal", None, False),
    ("the Pythagorean theorem holds (give a proof, not just an example)", None, False),
    ("the diagonals of a parallelogram bisect each other", None, False),
    ("an angle inscribed in a semicircle is a right angle", None, False),
    ("an exterior angle of a triangle equals the sum of the two opposite interior angles", None, False),
    ("the segment joining the midpoints of two sides of a triangle is parallel to the third side and half as long", None, False),
    ("the perpendicular bisectors of the sides of a triangle meet at a single point", None, False),
    ("the medians of a triangle meet at a point that divides each median in the ratio 2:1", None, False),
    ("the area of a triangle is (1/2)ab sin C", "$[ABC] = \\tfrac12 ab \\sin C$", False),
    ("the law of cosines holds: c^2 = a^2 + b^2 - 2ab cos C", "$c^2 = a^2 + b^2 - 2ab\\cos C$", False),
    ("opposite angles of a cyclic quadrilateral add up to 180 degrees", None, False),
    ("among all rectangles with a given perimeter, the square has the largest area", None, False),
    ("the derivative of x^n is n x^(n-1) for every positive integer n", "$\\frac{d}{dx} x^n = n x^{n-1}$", True),
    ("the series 1/1^2 + 1/2^2 + 1/3^2 + ... converges", "$\\sum_{n\\ge1} 1/n^2$ converges", False),
    ("a function that is differentiable at a point is continuous there", None, False),
    ("if f'(x) = 0 for every x in an interval, then f is constant on that interval", None, False),
    ("the sequence defined by a_1 = sqrt(2), a_(n+1) = sqrt(2 + a_n) converges, and find its limit", None, True),
    ("eigenvectors belonging to distinct eigenvalues are linearly independent", None, True),
    ("a real symmetric matrix has only real eigenvalues", None, False),
    ("if a square matrix A satisfies A^2 = A, then every eigenvalue of A is 0 or 1", "if $A^2 = A$ then $\\sigma(A) \\subseteq \\{0, 1\\}$", False),
    ("rank(AB) <= min(rank(A), rank(B))", "$\\operatorname{rank}(AB) \\le \\min(\\operatorname{rank} A, \\operatorname{rank} B)$", False),
    ("the null space of any matrix is a subspace", None, False),
    ("if A is nilpotent then I - A is invertible", "if $A^k = 0$ then $I - A$ is invertible", False),
    ("an orthogonal matrix preserves the length of every vector", "$\\|Qx\\| = \\|x\\|$ when $Q^TQ = I$", False),
    ("trace(AB) = trace(BA) for any matrices where both products are defined", "$\\operatorname{tr}(AB) = \\operatorname{tr}(BA)$", False),
    ("P(A or B) <= P(A) + P(B) for any events A and B", "$P(A \\cup B) \\le P(A) + P(B)$", False),
    ("Var(X) = E[X^2] - (E[X])^2", "$\\operatorname{Var}(X) = E[X^2] - E[X]^2$", False),
    ("Markov's inequality holds for non-negative random variables", "$P(X \\ge a) \\le E[X]/a$ for $X \\ge 0$, $a > 0$", False),
    ("Chebyshev's inequality follows from Markov's inequality", None, False),
    ("if A and B are independent events then A and the complement of B are independent", None, False),
    ("the expected number of fixed points of a uniformly random permutation of n elements is 1", None, False),
    ("the sum of C(n, k) over k = 0..n equals 2^n", "$\\sum_{k=0}^{n} \\binom{n}{k} = 2^n$", True),
    ("C(n, k) = C(n - 1, k - 1) + C(n - 1, k)", "$\\binom{n}{k} = \\binom{n-1}{k-1} + \\binom{n-1}{k}$", False),
    ("Vandermonde's identity holds", "$\\sum_k \\binom{m}{k}\\binom{n}{r-k} = \\binom{m+n}{r}$", False),
    ("C(2n, n) is even for every n >= 1", "$\\binom{2n}{n}$ is even for $n \\ge 1$", False),
    ("every tree with n vertices has exactly n - 1 edges", None, True),
    ("the sum of the degrees of a graph is twice the number of edges", None, False),
    ("a graph is bipartite if and only if it contains no odd cycle", None, False),
    ("every finite simple graph with at least two vertices has two vertices of the same degree", None, False),
    ("any comparison-based sorting algorithm needs Omega(n log n) comparisons in the worst case", None, False),
    ("the halting problem is undecidable", None, False),
    ("Dijkstra's algorithm returns correct shortest paths when all edge weights are non-negative", None, False),
    ("binary search on a sorted array always terminates and returns the correct index", None, False),
    ("a connected graph in which every vertex has even degree has an Eulerian circuit", None, False),
    ("the set of real numbers is uncountable", None, False),
    ("the set of rational numbers is countable", None, False),
    ("among any five points inside a unit square, two are at distance at most sqrt(2)/2", None, False),
    ("any set of n + 1 numbers chosen from {1, 2, ..., 2n} contains two numbers that are coprime", None, False),
]
NONSQUARES = [2, 3, 5, 6, 7, 10, 11, 12, 13, 15, 17, 19, 21]
FROBENIUS = [((3, 5), 8), ((3, 7), 12), ((4, 5), 12), ((5, 7), 24), ((3, 8), 14), ((4, 7), 18)]
LOG_PAIRS = [(2, 3), (2, 5), (3, 5), (2, 7), (5, 7), (3, 10)]


def proof_statement(rng):
    r = rng.random()
    if r < 0.55:
        s, tex, ind = ch(rng, PROOF_FIXED)
        if tex and rng.random() < 0.5:
            return tex, ind
        return s, ind
    k = rng.randrange(10)
    if k == 0:
        p = ch(rng, NONSQUARES)
        return ch(rng, [f"the square root of {p} is irrational", f"$\\sqrt{{{p}}}$ is irrational", f"sqrt({p}) is not a rational number"]), False
    if k == 1:
        a = rng.randint(3, 12)
        return ch(rng, [f"{a}^n - 1 is divisible by {a - 1} for every positive integer n", f"${a - 1} \\mid {a}^n - 1$ for all $n \\ge 1$"]), True
    if k == 2:
        e, m = ch(rng, [(3, 6), (5, 30), (7, 42), (3, 3), (5, 5)])
        return ch(rng, [f"n^{e} - n is divisible by {m} for every integer n", f"${m} \\mid n^{e} - n$ for all integers $n$"]), True
    if k == 3:
        (a, b), n0 = ch(rng, FROBENIUS)
        return f"every integer n >= {n0} can be written as {a}x + {b}y with x and y non-negative integers", True
    if k == 4:
        a, b = ch(rng, LOG_PAIRS)
        return ch(rng, [f"log base {a} of {b} is irrational", f"$\\log_{{{a}}} {b}$ is irrational"]), False
    if k == 5:
        kk = rng.randint(1, 9)
        c = rng.randint(1, 20)
        return ch(rng, [f"x^2 - {2 * kk}x + {kk * kk + c} > 0 for every real number x", f"$x^2 - {2 * kk}x + {kk * kk + c} > 0$ for all real $x$"]), False
    if k == 6:
        kk = rng.randint(3, 15)
        return f"the equation x^5 - {kk}x + 1 = 0 has a real root between 0 and 1", False
    if k == 7:
        c = rng.randint(1, 50)
        return ch(rng, [f"the equation x^3 + x - {c} = 0 has exactly one real solution", f"$x^3 + x = {c}$ has exactly one real root"]), False
    if k == 8:
        n = rng.randint(3, 12)
        return f"among any {n + 1} integers, two of them leave the same remainder when divided by {n}", False
    kk = rng.randint(3, 5)
    return f"the product of any {kk} consecutive integers is divisible by {kk}!", True


def g_proof(rng):
    s, ind = proof_statement(rng)
    frames = [
        "Prove that {s}.", "Show that {s}.", "Give a rigorous proof that {s}.", "Prove, with full justification, that {s}.",
        "Can you walk me through a proof that {s}?", "I'm stuck on this exercise: prove that {s}. Please write out every step.",
        "Write a formal proof that {s}, stating clearly any lemma you use.", "Homework: show that {s}. Explain each step.",
        "Prove or disprove: {s}.", "Demonstrate that {s}, and point out where each hypothesis is used.",
        "How would you prove that {s}? Give the complete argument.", "Give two different proofs that {s}.",
        "Prove {s}", "Explain why {s}, with a proper proof rather than examples.",
    ]
    if ind:
        frames += ["Prove by induction that {s}.", "Use mathematical induction to prove that {s}. Write out the base case and the inductive step.",
                   "Give an inductive proof that {s}."]
    return ch(rng, frames).format(s=s), "proof"


def g_derivation(rng):
    a = rng.randint(2, 9)
    b = rng.randint(1, 9)
    c = rng.randint(1, 12)
    k = round(rng.uniform(0.1, 0.9), 1)
    q = ch(rng, [
        "Derive the quadratic formula by completing the square.",
        "Derive the formula for the sum of a finite geometric series and then find the sum of the infinite series when |r| < 1.",
        "Derive the derivative of sin x from first principles, justifying the limits you use.",
        f"Find all critical points of f(x) = x^3 - {3 * a}x^2 + {b}x and classify each one, showing your working.",
        f"Solve the differential equation y' = {k}y with y(0) = {c}, then find when y reaches {c * 10}. Explain each step.",
        f"Evaluate the integral of x e^({a}x) dx using integration by parts, and check your answer by differentiating.",
        f"Compute the integral from 0 to {a} of x^2 sqrt(x^3 + 1) dx, showing the substitution.",
        f"Find the Taylor series of ln(1 + x) around 0 and use it to estimate ln(1.{b}) to four decimal places, with an error bound.",
        "Derive the formula for the variance of a binomial random variable.",
        "Derive the formula for the volume of a sphere using integration.",
        "Derive Bayes' theorem from the definition of conditional probability and apply it to a medical test with 1% prevalence, 95% sensitivity and 90% specificity.",
        f"Find the eigenvalues and eigenvectors of the matrix [[{a}, {b}], [{b}, {a}]] and diagonalise it.",
        f"Solve the recurrence T(n) = {ch(rng, [2, 3, 4])}T(n/2) + n and justify the answer with the master theorem or a recursion tree.",
        f"Solve the recurrence a_n = {a}a_(n-1) - {a * a // 4 if a % 2 == 0 else a}a_(n-2) with a_0 = 1, a_1 = {b} in closed form.",
        f"A ladder {a + 5} m long slides down a wall. If the bottom moves away at {b / 10:.1f} m/s, how fast is the top falling when the bottom is {a} m from the wall? Show the related-rates setup.",
        f"Use Lagrange multipliers to maximise xy subject to x^2 + {a}y^2 = {c * 4}.",
        "Derive the kinetic energy formula (1/2)mv^2 from the work-energy principle.",
        "Derive the equation of motion of a simple pendulum and the small-angle approximation of its period.",
        f"Find the limit as x goes to 0 of (e^({a}x) - 1 - {a}x) / x^2, explaining each step without just quoting a calculator.",
        f"Show how to compute the determinant of a 4x4 matrix by cofactor expansion, using [[1, {a}, 0, 2], [0, 1, {b}, 1], [3, 0, 1, 0], [1, 2, 0, {c}]] as the example.",
        f"Find the least-squares line through the points (1, {b}), (2, {b + a}), (3, {b + 2 * a + 1}), (4, {b + 3 * a - 1}), deriving the normal equations.",
        "Derive the formula for compound interest with continuous compounding from the discrete formula.",
        f"Find the shortest distance from the point ({a}, {b}, {c}) to the plane x + 2y - 2z = {a + b}, deriving the formula you use.",
        f"Find the general solution of y'' - {a + 1}y' + {a}y = e^(2x).",
        "Derive the expected number of coin flips needed to get two heads in a row.",
        "Derive the normal equations for linear regression in matrix form and explain when the solution is unique.",
    ])
    return q, "derivation"


# ----- logic puzzles (instances generated and checked for a unique solution) -----

def kk_statement(rng, speaker, people):
    others = [p for p in people if p != speaker]
    t = ch(rng, others)
    t2 = ch(rng, others)
    kind = rng.randrange(8)
    if kind == 0:
        return f"{t} is a knave.", lambda w: not w[t]
    if kind == 1:
        return f"{t} is a knight.", lambda w: w[t]
    if kind == 2:
        return f"{t} and I are both knights.", lambda w: w[t] and w[speaker]
    if kind == 3:
        return f"{t} and I are the same kind.", lambda w: w[t] == w[speaker]
    if kind == 4:
        return f"{t} and I are different kinds.", lambda w: w[t] != w[speaker]
    if kind == 5:
        return "At least one of us is a knave.", lambda w: not all(w.values())
    if kind == 6:
        return "Exactly one of us is a knight.", lambda w: sum(w.values()) == 1
    if t2 == t:
        return f"{t} is a knave.", lambda w: not w[t]
    return f"Either {t} is a knight or {t2} is a knave.", lambda w: w[t] or not w[t2]


def g_knights(rng):
    n = ch(rng, [2, 3, 3, 4])
    for _ in range(200):
        people = sample(rng, FIRST, n)
        speakers = people if n <= 3 else sample(rng, people, 3 + rng.randint(0, 1))
        stmts = [(s,) + kk_statement(rng, s, people) for s in speakers]
        sols = []
        for bits in itertools.product([True, False], repeat=n):
            w = dict(zip(people, bits))
            if all(w[s] == f(w) for s, _, f in stmts):
                sols.append(w)
        if len(sols) == 1:
            break
    else:
        return None
    names = ch(rng, [("knights", "knaves", "always tells the truth", "always lies"),
                     ("truth-tellers", "liars", "never lies", "never tells the truth"),
                     ("knights", "knaves", "only ever says true things", "only ever says false things")])
    setting = ch(rng, ["On an island", "In a village", "At a strange conference", "In a remote monastery"])
    intro = f"{setting} every inhabitant is either a knight, who {names[2]}, or a knave, who {names[3]}."
    if names[0] != "knights":
        intro = f"{setting} every inhabitant is either a {names[0][:-1]}, who {names[2]}, or a {names[1][:-1]}, who {names[3]}."
        stmts = [(s, t.replace("knaves", names[1]).replace("knave", names[1][:-1]).replace("knights", names[0]).replace("knight", names[0][:-1]), f) for s, t, f in stmts]
    lines = [intro, f"You meet {join_and(people)}."]
    for s, t, _ in stmts:
        lines.append(ch(rng, [f"{s} says: \"{t}\"", f"{s} says, \"{t}\"", f"{s}: \"{t}\""]))
    lines.append(ch(rng, ["Who is what? Explain your reasoning step by step.", f"Determine which of them are {names[0]} and which are {names[1]}, and justify your answer.",
                          "Work out the type of each person and show that no other assignment works.", "Solve the puzzle and explain how you eliminated the other cases."]))
    return "\n".join(lines), "logic_puzzle"


NUM_WORDS = {3: "three", 4: "four", 5: "five", 6: "six"}
ORDER_CONTEXTS = [
    {"intro": "{n} friends, {names}, sit in a row of {n} seats numbered 1 to {nd} from left to right.",
     "before": "{a} sits somewhere to the left of {b}.", "imm": "{a} sits immediately to the left of {b}.",
     "adj": "{a} sits next to {b}.", "nadj": "{a} and {b} do not sit next to each other.", "pos": "{a} is in seat {k}.",
     "npos": "{a} is not in seat {k}.", "end": "{a} sits at one of the ends.", "nend": "{a} does not sit at either end.",
     "gap": "There are exactly {k} people between {a} and {b}.", "q": ["Who sits in each seat?", "Find the seating order from left to right."]},
    {"intro": "{n} runners, {names}, finished a race with no ties.",
     "before": "{a} finished ahead of {b}.", "imm": "{a} finished immediately ahead of {b}.",
     "adj": "{a} and {b} finished one place apart.", "nadj": "{a} and {b} did not finish in consecutive places.", "pos": "{a} finished in position {k}.",
     "npos": "{a} did not finish in position {k}.", "end": "{a} finished either first or last.", "nend": "{a} was neither first nor last.",
     "gap": "Exactly {k} runners finished between {a} and {b}.", "q": ["What was the finishing order?", "Who won, and what was the full order?"]},
    {"intro": "{names} each live on a different floor of a {n}-storey building (floor 1 is the lowest).",
     "before": "{a} lives on a lower floor than {b}.", "imm": "{a} lives on the floor directly below {b}.",
     "adj": "{a} and {b} live on adjacent floors.", "nadj": "{a} and {b} do not live on adjacent floors.", "pos": "{a} lives on floor {k}.",
     "npos": "{a} does not live on floor {k}.", "end": "{a} lives on either the top or the bottom floor.", "nend": "{a} lives on neither the top nor the bottom floor.",
     "gap": "Exactly {k} of the others live between {a} and {b}.", "q": ["Who lives on which floor?", "Work out everyone's floor."]},
    {"intro": "{n} meetings, with {names}, are scheduled one per day on {n} consecutive days.",
     "before": "The meeting with {a} is earlier than the one with {b}.", "imm": "The meeting with {b} is the day after the one with {a}.",
     "adj": "The meetings with {a} and {b} are on consecutive days.", "nadj": "The meetings with {a} and {b} are not on consecutive days.",
     "pos": "The meeting with {a} is on day {k}.", "npos": "The meeting with {a} is not on day {k}.", "end": "The meeting with {a} is on the first or the last day.",
     "nend": "The meeting with {a} is on neither the first nor the last day.", "gap": "There are exactly {k} days between the meetings with {a} and {b}.",
     "q": ["In what order are the meetings?", "Give the schedule day by day."]},
]


def order_clue(rng, order, ctx):
    n = len(order)
    pos = {p: i for i, p in enumerate(order)}
    a, b = sample(rng, order, 2)
    kind = rng.randrange(9)
    if kind == 0:
        if pos[a] > pos[b]:
            a, b = b, a
        return ctx["before"].format(a=a, b=b), (lambda P, a=a, b=b: P[a] < P[b])
    if kind == 1:
        i = rng.randrange(n - 1)
        a, b = order[i], order[i + 1]
        return ctx["imm"].format(a=a, b=b), (lambda P, a=a, b=b: P[b] == P[a] + 1)
    if kind == 2:
        i = rng.randrange(n - 1)
        a, b = order[i], order[i + 1]
        if rng.random() < 0.5:
            a, b = b, a
        return ctx["adj"].format(a=a, b=b), (lambda P, a=a, b=b: abs(P[a] - P[b]) == 1)
    if kind == 3:
        if abs(pos[a] - pos[b]) == 1:
            return None
        return ctx["nadj"].format(a=a, b=b), (lambda P, a=a, b=b: abs(P[a] - P[b]) != 1)
    if kind == 4 and rng.random() < 0.5:
        return ctx["pos"].format(a=a, k=pos[a] + 1), (lambda P, a=a, k=pos[a]: P[a] == k)
    if kind == 5:
        k = rng.randrange(n)
        if k == pos[a]:
            return None
        return ctx["npos"].format(a=a, k=k + 1), (lambda P, a=a, k=k: P[a] != k)
    if kind == 6:
        if pos[a] in (0, n - 1):
            return ctx["end"].format(a=a), (lambda P, a=a: P[a] in (0, n - 1))
        return ctx["nend"].format(a=a), (lambda P, a=a: P[a] not in (0, n - 1))
    if kind == 7:
        g = abs(pos[a] - pos[b]) - 1
        if g < 1:
            return None
        return ctx["gap"].format(a=a, b=b, k=g), (lambda P, a=a, b=b, g=g: abs(P[a] - P[b]) - 1 == g)
    if pos[a] > pos[b]:
        a, b = b, a
    return ctx["before"].format(a=a, b=b), (lambda P, a=a, b=b: P[a] < P[b])


def g_ordering(rng):
    n = ch(rng, [4, 5, 5, 6])
    ctx = ch(rng, ORDER_CONTEXTS)
    people = sample(rng, FIRST, n)
    order = people[:]
    rng.shuffle(order)
    perms = [dict(zip(p, range(n))) for p in itertools.permutations(people)]
    clues = []
    alive = perms
    for _ in range(60):
        c = order_clue(rng, order, ctx)
        if c is None:
            continue
        text, f = c
        nxt = [P for P in alive if f(P)]
        if len(nxt) < len(alive) and text not in [t for t, _ in clues]:
            clues.append((text, f))
            alive = nxt
        if len(alive) == 1:
            break
    if len(alive) != 1 or len(clues) < 3:
        return None
    rng.shuffle(clues)
    lines = [cap(ctx["intro"].format(n=NUM_WORDS[n], nd=n, names=join_and(people)))]
    numbered = rng.random() < 0.6
    for i, (t, _) in enumerate(clues):
        lines.append(f"{i + 1}. {t}" if numbered else f"- {t}")
    q = ch(rng, ctx["q"])
    lines.append(q + " " + ch(rng, ["Explain your reasoning.", "Show how each clue is used.", "Prove that your answer is the only one possible.", ""]))
    return "\n".join(lines).strip(), "logic_puzzle"


ZEBRA_ATTRS = [
    ("pet", ["cat", "dog", "parrot", "rabbit", "tortoise"], "owns the {v}", "the {v} owner"),
    ("drink", ["tea", "coffee", "juice", "milk", "water"], "drinks {v}", "the {v} drinker"),
    ("job", ["teacher", "pilot", "chef", "engineer", "doctor"], "is the {v}", "the {v}"),
    ("city", ["Oslo", "Lima", "Cairo", "Perth", "Quito"], "lives in {v}", "the person who lives in {v}"),
    ("sport", ["tennis", "chess", "rowing", "climbing", "judo"], "plays {v}", "the one who plays {v}"),
]


def g_zebra(rng):
    n = ch(rng, [3, 4, 4])
    people = sample(rng, FIRST, n)
    A, B = sample(rng, ZEBRA_ATTRS, 2)
    va, vb = sample(rng, A[1], n), sample(rng, B[1], n)
    sol_a = dict(zip(people, va))
    sol_b = dict(zip(people, vb))
    worlds = []
    for pa in itertools.permutations(va):
        for pb in itertools.permutations(vb):
            worlds.append((dict(zip(people, pa)), dict(zip(people, pb))))
    inv_a = {v: p for p, v in sol_a.items()}
    inv_b = {v: p for p, v in sol_b.items()}
    clues, alive = [], worlds
    for _ in range(80):
        k = rng.randrange(5)
        p = ch(rng, people)
        if k == 0:
            t = f"{p} {A[2].format(v=sol_a[p])}."
            f = lambda w, p=p, v=sol_a[p]: w[0][p] == v
        elif k == 1:
            v = ch(rng, [x for x in va if x != sol_a[p]])
            t = f"{p} does not {A[2].format(v=v).replace('owns', 'own').replace('drinks', 'drink').replace('lives', 'live').replace('plays', 'play').replace('is the', 'work as the')}."
            f = lambda w, p=p, v=v: w[0][p] != v
        elif k == 2:
            v = ch(rng, vb)
            t = f"{cap(B[3].format(v=v))} {A[2].format(v=sol_a[inv_b[v]])}."
            f = lambda w, v=v, u=sol_a[inv_b[v]]: any(w[1][q] == v and w[0][q] == u for q in people)
        elif k == 3:
            v = ch(rng, vb)
            t = f"{p} {B[2].format(v=sol_b[p])}."
            f = lambda w, p=p, v=sol_b[p]: w[1][p] == v
        else:
            v = ch(rng, va)
            u = ch(rng, [x for x in vb if x != sol_b[inv_a[v]]])
            t = f"{cap(A[3].format(v=v))} is not {B[3].format(v=u)}."
            f = lambda w, v=v, u=u: not any(w[0][q] == v and w[1][q] == u for q in people)
        nxt = [w for w in alive if f(w)]
        if len(nxt) < len(alive) and t not in [c for c, _ in clues]:
            clues.append((t, f))
            alive = nxt
        if len(alive) == 1:
            break
    if len(alive) != 1 or len(clues) < 3:
        return None
    rng.shuffle(clues)
    lines = [f"{join_and(people)} each have a different {A[0]} ({', '.join(va)}) and a different {B[0]} ({', '.join(vb)}).", "Clues:"]
    lines += [f"{i + 1}. {t}" for i, (t, _) in enumerate(clues)]
    lines.append(ch(rng, [f"Work out each person's {A[0]} and {B[0]}, explaining the deduction.", f"Who {A[2].format(v=ch(rng, va))}? Show the full solution grid and your reasoning.",
                          "Solve the puzzle step by step.", "Find the unique solution and show why it is unique."]))
    return "\n".join(lines), "logic_puzzle"


RIVER_SETS = [("wolf", "goat", "cabbage"), ("fox", "chicken", "sack of grain"), ("dog", "cat", "tin of tuna"),
              ("lion", "goat", "bale of hay"), ("hawk", "mouse", "bag of seeds"), ("python", "rabbit", "basket of carrots")]


def g_river(rng):
    k = rng.randrange(5)
    nm = ch(rng, FIRST)
    if k == 0:
        pred, prey, food = ch(rng, RIVER_SETS)
        boat = ch(rng, ["rowing boat", "small raft", "canoe", "tiny ferry"])
        return (f"{nm} has to get a {pred}, a {prey} and a {food} across a river. The {boat} can carry {nm} and only one of the three at a time. "
                f"If left alone together, the {pred} will eat the {prey}, and the {prey} will eat the {food}. "
                f"{ch(rng, ['Find a sequence of crossings that gets everything across safely, and explain why no shorter sequence works.', 'How can it be done? List every crossing.', 'What is the minimum number of crossings? Prove it.'])}"), "logic_puzzle"
    if k == 1:
        times = sorted(rng.sample(range(1, 26), 4))
        people = sample(rng, FIRST, 4)
        desc = ", ".join(f"{p} takes {t} minute{'s' if t > 1 else ''}" for p, t in zip(people, times))
        return (f"Four people must cross a narrow bridge at night. They have one torch, the bridge holds at most two people at a time, and anyone crossing must carry the torch. "
                f"Walking alone, {desc}; a pair moves at the slower person's pace. What is the shortest total time to get everyone across? Give the schedule and argue that it is optimal."), "logic_puzzle"
    if k == 2:
        while True:
            a, b = rng.randint(3, 13), rng.randint(3, 13)
            if a != b and math.gcd(a, b) == 1:
                break
        t = rng.randint(1, max(a, b) - 1)
        if t in (a, b):
            t = 1
        return (f"You have {art(a)} {a}-litre jug and {art(b)} {b}-litre jug, no markings, and an unlimited tap. How can you measure exactly {t} litre{'s' if t > 1 else ''}? "
                f"{ch(rng, ['Give the shortest sequence of steps and explain why it works.', 'Describe each pour and the contents of both jugs after each step.', 'Is it always possible with these two jugs? Explain, then give a solution.'])}"), "logic_puzzle"
    if k == 3:
        n = rng.randint(8, 40)
        heavy = ch(rng, ["heavier", "lighter", "either heavier or lighter (you don't know which)"])
        return (f"You have {n} identical-looking coins. One is counterfeit and is {heavy} than the rest. Using only a balance scale, what is the minimum number of weighings "
                f"that guarantees you find the fake? Describe a strategy that achieves it and prove no strategy can do better."), "logic_puzzle"
    fruits = sample(rng, ["apples", "oranges", "pears", "plums", "lemons"], 2)
    return (f"Three boxes are labelled \"{fruits[0]}\", \"{fruits[1]}\" and \"{fruits[0]} and {fruits[1]}\". Every label is wrong. You may take out one piece of fruit from one box "
            f"without looking inside. Which box should you pick from, and how do you then relabel all three correctly? Explain the reasoning fully."), "logic_puzzle"


def g_logic(rng):
    for _ in range(20):
        r = rng.random()
        if r < 0.28:
            out = g_knights(rng)
        elif r < 0.6:
            out = g_ordering(rng)
        elif r < 0.82:
            out = g_zebra(rng)
        else:
            out = g_river(rng)
        if out:
            return out
    return g_river(rng)


def g_combinatorics(rng):
    n = rng.randint(5, 12)
    k = rng.randint(2, 4)
    r, b, g = rng.randint(2, 9), rng.randint(2, 9), rng.randint(2, 9)
    A, B = sample(rng, FIRST, 2)
    word = ch(rng, ["BANANA", "MISSISSIPPI", "LETTER", "COMMITTEE", "ELEVEN", "PARALLEL", "BALLOON", "SUCCESS", "TOMORROW"])
    N = rng.randint(100, 2000)
    a1, a2, a3 = sorted(rng.sample([2, 3, 5, 7, 11], 3))
    m, nn = rng.randint(3, 8), rng.randint(3, 8)
    pa, pb = rng.randint(1, m - 1), rng.randint(1, nn - 1)
    s = rng.randint(7, 11)
    d = rng.randint(1, 6)
    q = ch(rng, [
        f"In how many ways can {n} people sit around a round table if {A} and {B} refuse to sit next to each other? Explain the counting.",
        f"A bag contains {r} red, {b} blue and {g} green marbles. Three are drawn without replacement. What is the probability that all three are different colours? Show your working.",
        f"How many {k + 2}-digit numbers have their digits in strictly increasing order? Justify the count.",
        f"Two fair dice are rolled. Given that at least one shows a {d}, what is the probability that the sum is at least {s}? Explain step by step.",
        f"What is the expected number of rolls of a fair die until the same number appears twice in a row? Derive it.",
        f"How many lattice paths go from (0, 0) to ({m}, {nn}) using unit steps right and up, if the path must avoid the point ({pa}, {pb})?",
        f"How many distinct arrangements of the letters of {word} are there? How many of them have no two identical letters adjacent? Explain your method.",
        f"In a group of {n + 15} people, what is the probability that at least two share a birthday (ignore leap years)? Show how you compute it and explain why it is higher than most people expect.",
        f"What is the probability that a random 5-card hand from a standard deck contains exactly {ch(rng, [2, 3])} hearts and at least one ace? Work it out carefully.",
        f"How many integers from 1 to {N} are divisible by at least one of {a1}, {a2} and {a3}? Use inclusion-exclusion and show each term.",
        f"{n} letters are put into {n} addressed envelopes at random. What is the probability that no letter ends up in the right envelope? Derive the formula and evaluate it for n = {n}.",
        f"What is the expected value of the maximum of {ch(rng, ['two', 'three'])} independent rolls of a fair six-sided die? Derive it.",
        f"A fair coin is flipped {n + 3} times. What is the probability of getting at least {ch(rng, [3, 4])} heads in a row somewhere in the sequence? Explain the recursion you use.",
        f"How many ways are there to distribute {n + 5} identical sweets among {k + 1} children so that each child gets at least one? What if one child must get an even number? Explain.",
        f"A committee of {k + 1} is chosen from {n} women and {n - 2} men. In how many ways can it be chosen so that it has at least one woman and at least one man, and {A} and {B} (both women) are not both on it?",
        f"Player 1 wins each game with probability 0.{rng.randint(40, 70)}. In a best-of-{ch(rng, [5, 7])} match, what is the probability that player 1 wins the match? Show the calculation.",
        f"A test for a disease is {rng.randint(90, 99)}% sensitive and {rng.randint(85, 99)}% specific, and {ch(rng, ['0.5', '1', '2', '5'])}% of people have the disease. If someone tests positive twice in independent tests, what is the probability they have it?",
        f"A random walk starts at 0 and moves +1 or -1 with equal probability. What is the probability that it reaches +{k} before -{k + 1}? Derive the answer.",
        f"You draw cards from a shuffled deck until you see the first ace. What is the expected number of cards drawn? Give a clean argument.",
        f"How many subsets of {{1, 2, ..., {n + 3}}} contain no two consecutive integers? Derive a recurrence and solve it for this case.",
        f"Count the number of functions from a {k + 1}-element set onto a {k}-element set, and explain the method.",
        f"Three points are chosen uniformly at random on a circle. What is the probability that the triangle they form contains the centre? Explain.",
    ])
    return q, "combinatorics_probability"


def g_multistep_math(rng):
    L = rng.randint(40, 400)
    a, b, c = rng.randint(2, 9), rng.randint(2, 9), rng.randint(10, 90)
    v1, v2 = rng.randint(40, 90), rng.randint(40, 90)
    P = rng.randint(5, 50) * 1000
    rate = rng.randint(2, 9)
    yrs = rng.randint(3, 20)
    q = ch(rng, [
        f"A rectangular field is fenced on three sides with {L} m of fencing, with a straight river forming the fourth side. What dimensions maximise the enclosed area? Justify that it is a maximum.",
        f"Solve the system: {a}x + {b}y - z = {c}, x - y + {a}z = {b}, {b}x + y + z = {a + c}. Show the elimination steps.",
        f"Find all real solutions of x^4 - {a * a + b * b}x^2 + {a * a * b * b} = 0 and explain your method.",
        f"Two trains start {L * 3} km apart and travel towards each other at {v1} km/h and {v2} km/h. A bird flies back and forth between them at {v1 + v2 + 30} km/h until they meet. How far does the bird fly? Then explain how you would compute the number of trips it makes.",
        f"You invest ${P:,} at {rate}% annual interest compounded monthly and add ${rng.randint(1, 9) * 100} at the end of each month. How much will you have after {yrs} years? Show the formula and the computation.",
        f"A cone-shaped tank with height {a + 4} m and top radius {b} m is filled at {c / 10:.1f} m^3/min. How fast is the water level rising when the water is {a} m deep? Show the related-rates setup.",
        f"Find the area enclosed between y = x^2 and y = {a}x - {a - 1}, showing where the curves intersect.",
        f"A company's cost function is C(q) = {c}q + {P} and its demand is p = {c * 4} - {a / 10:.1f}q. Find the profit-maximising quantity and price, and the maximum profit.",
        f"How many trailing zeros does {c * 10 + a}! have, and what is its last non-zero digit? Explain the reasoning.",
        f"Find the smallest positive integer that leaves remainder {a - 1} when divided by {a}, {b - 1 if b > 2 else 1} when divided by {b + 5}, and 1 when divided by 7, or explain why none exists.",
        f"A boat travels {L // 4} km upstream in {a} hours and returns downstream in {max(1, a - 1)} hours. Find the speed of the boat in still water and the speed of the current, then work out how long a round trip of {L // 2} km each way would take.",
        f"Find the remainder when {a}^{c * 7} is divided by {ch(rng, [7, 11, 13, 17])}, explaining which theorem you use.",
        f"A circle passes through ({a}, 0), (0, {b}) and (0, 0). Find its centre, radius and equation, and find where it meets the line y = x.",
        f"Three pipes fill a pool in {a + 2}, {b + 4} and {c // 5 + 6} hours respectively, and a drain empties it in {a + b + 3} hours. With all four open, how long does it take to fill the pool? Then find which single pipe, if closed, delays filling the most.",
        f"Find the maximum volume of an open-top box made from a {c} cm by {c + 2 * a} cm sheet by cutting equal squares from each corner. Show the calculus.",
        f"What is the sum of all positive divisors of {a * b * c * 6}? Explain using the prime factorisation.",
    ])
    return q, "multi_step_math"


# ----- code -----

LANGS = ["Rust", "Go", "TypeScript", "C++", "Java", "Python", "C#", "Kotlin", "Swift", "C", "Scala", "Haskell", "Ruby", "JavaScript"]
ALGOS = [
    ("Dijkstra's shortest-path algorithm with a binary heap", "returning both distances and the actual paths"),
    ("A* search on a 2D grid with obstacles", "using the Manhattan distance heuristic and allowing diagonal moves as an option"),
    ("topological sort", "that detects cycles and reports one of them"),
    ("a union-find (disjoint set) structure", "with path compression and union by rank"),
    ("a trie", "that supports insert, delete, and listing all words with a given prefix in sorted order"),
    ("a segment tree", "with lazy propagation for range add and range sum queries"),
    ("an LRU cache", "with O(1) get and put"),
    ("an LFU cache", "with O(1) operations and LRU tie-breaking"),
    ("a Bloom filter", "with a configurable false-positive rate and a way to estimate the current error rate"),
    ("a consistent hashing ring", "with virtual nodes and the ability to add and remove servers"),
    ("a token-bucket rate limiter", "that is safe to call from multiple threads"),
    ("the KMP string-search algorithm", "returning every match position"),
    ("the Aho-Corasick algorithm", "for matching many keywords at once"),
    ("a red-black tree", "with insertion and in-order iteration"),
    ("an AVL tree", "with insert, delete and a method that checks the balance invariant"),
    ("a skip list", "with insert, delete and search in expected O(log n)"),
    ("a binary heap priority queue", "with decrease-key support"),
    ("the Bellman-Ford algorithm", "that detects negative cycles and prints the cycle"),
    ("Floyd-Warshall", "with path reconstruction"),
    ("Kruskal's minimum spanning tree algorithm", "and compare it with Prim's on dense graphs"),
    ("Tarjan's strongly connected components algorithm", "iteratively, without recursion"),
    ("the longest increasing subsequence in O(n log n)", "returning the subsequence itself, not just its length"),
    ("edit distance", "that also returns the sequence of edit operations"),
    ("a 0/1 knapsack solver", "that recovers which items were chosen"),
    ("a recursive-descent parser for arithmetic expressions", "supporting +, -, *, /, parentheses, unary minus and clear error messages"),
    ("a regular-expression matcher", "supporting '.', '*', '+' and '?'"),
    ("a Sudoku solver", "using backtracking with constraint propagation"),
    ("an N-queens solver", "that counts all solutions for n up to 14 efficiently using bitmasks"),
    ("a streaming median", "using two heaps"),
    ("Huffman coding", "with both encoding and decoding and a round-trip test"),
    ("a k-way merge of sorted lists", "using a heap"),
    ("quickselect", "with median-of-medians pivoting for worst-case linear time"),
    ("a suffix array", "with an LCP array built by Kasai's algorithm"),
    ("a Fenwick tree", "supporting point updates and prefix sums, plus finding the smallest index with a given prefix sum"),
    ("a line-based diff tool", "based on the longest common subsequence, printing a unified diff"),
    ("a CSV parser", "that handles quoted fields, escaped quotes and newlines inside quotes"),
    ("a URL router", "with path parameters like /users/:id and wildcard segments"),
    ("a text editor buffer", "with undo and redo using the command pattern"),
    ("an interval tree", "supporting insertion and finding all intervals that overlap a query"),
    ("a JSON parser", "for objects, arrays, strings with escapes, numbers, booleans and null"),
    ("a max-flow solver using Edmonds-Karp", "that also returns the minimum cut"),
    ("a thread pool", "with a fixed number of workers and graceful shutdown"),
    ("an in-memory key-value store", "with TTL expiry and periodic cleanup"),
    ("a B-tree", "of configurable order with insert and search"),
    ("a matrix exponentiation routine", "and use it to compute the n-th Fibonacci number modulo 1e9+7"),
    ("Conway's Game of Life", "on an unbounded grid using a hash set of live cells"),
    ("a bank-account ledger", "with transfers that are atomic and a full audit log"),
    ("an event scheduler", "that runs callbacks at given times using a priority queue"),
    ("a simple virtual machine", "for a stack-based bytecode with arithmetic, jumps and function calls"),
    ("a spell checker", "that suggests the closest dictionary words by edit distance using a BK-tree"),
]
CODE_EXTRAS = ["Include unit tests.", "Explain the time and space complexity.", "Make it generic over the element type.",
               "Handle edge cases such as empty input.", "Don't use any external libraries.", "Add comments explaining the tricky parts.",
               "Write idiomatic code and explain your design choices.", "Include a small example in main.", "Make it thread-safe.",
               "Benchmark it against a naive approach.", "Provide doc comments for the public API."]


def g_code_impl(rng):
    lang = ch(rng, LANGS)
    algo, detail = ch(rng, ALGOS)
    r = rng.random()
    if r < 0.3:
        q = ch(rng, [f"Implement {algo} in {lang}.", f"Write {algo} in {lang} {detail}.", f"{lang}: implement {algo} {detail}.",
                     f"Code {algo} in {lang}", f"implement {algo} in {lang.lower()}"])
        return q, "code_implementation"
    extras = sample(rng, CODE_EXTRAS, rng.randint(1, 3))
    if r < 0.7:
        q = ch(rng, [f"Write a {lang} implementation of {algo} {detail}. {' '.join(extras)}",
                     f"Can you code up {algo} in {lang}, {detail}? {' '.join(extras)}",
                     f"I need {algo} in {lang} {detail}. {' '.join(extras)}",
                     f"Implement {algo} in {lang}. Requirements:\n" + "\n".join(f"- {e}" for e in [cap(detail) + "."] + extras)])
        return q, "code_implementation"
    task = ch(rng, [
        f"a command-line tool in {lang} that reads a log file, counts requests per IP address per minute, and prints the top 10 offenders with their peak rate",
        f"a {lang} program that watches a directory and re-runs a command whenever a file changes, debouncing rapid changes",
        f"a {lang} module that validates and normalises international phone numbers, with tests for at least ten tricky cases",
        f"a {lang} function that takes a list of meetings (start, end) and returns the minimum number of rooms needed, plus the room assignment",
        f"a {lang} library that paginates results from a REST API with cursor-based pagination and retries with exponential backoff",
        f"a {lang} service that deduplicates incoming events by ID within a sliding 10-minute window using bounded memory",
        f"a {lang} program that solves a maze given as a text file and prints the shortest path drawn on the maze",
        f"a {lang} class that parses cron expressions and computes the next five run times after a given timestamp",
        f"a {lang} tool that compares two JSON documents and prints a structural diff with paths",
        f"a {lang} implementation of a simple Markdown to HTML converter that supports headings, lists, emphasis and code blocks",
        f"a {lang} function that schedules tasks with dependencies and durations on k workers to minimise total completion time, using a greedy heuristic, and explain when it's not optimal",
        f"a {lang} program that computes the convex hull of a set of points and its area",
        f"a {lang} bank-statement reconciler that matches transactions from two CSV files with tolerance for date and amount differences",
    ])
    q = ch(rng, [f"Write {task}. {' '.join(extras)}", f"Please build {task}. {' '.join(extras)}", f"I'd like you to write {task}."])
    return q, "code_implementation"


# (language, goal, symptom, code)
BUGGY = [
    ("Python", "return the index of target in a sorted list, or -1", "it loops forever on some inputs",
     "def {fn}(items, target):\n    lo, hi = 0, len(items) - 1\n    while lo <= hi:\n        mid = (lo + hi) // 2\n        if items[mid] < target:\n            lo = mid\n        elif items[mid] > target:\n            hi = mid - 1\n        else:\n            return mid\n    return -1"),
    ("Python", "collect items into a fresh list on each call", "items from earlier calls keep showing up",
     "def {fn}(item, bucket=[]):\n    bucket.append(item)\n    return bucket"),
    ("Go", "process every item concurrently and wait for all of them", "it sometimes processes the same item several times and skips others",
     "func {fn}(items []string) {{\n    var wg sync.WaitGroup\n    for i := 0; i < len(items); i++ {{\n        wg.Add(1)\n        go func() {{\n            defer wg.Done()\n            handle(items[i])\n        }}()\n    }}\n    wg.Wait()\n}}"),
    ("JavaScript", "load every user and return their names", "it returns an array of Promise objects instead of names",
     "async function {fn}(ids) {{\n  const names = ids.map(async (id) => {{\n    const user = await fetchUser(id);\n    return user.name;\n  }});\n  return names;\n}}"),
    ("Rust", "remove all negative numbers from the vector", "it doesn't compile",
     "fn {fn}(v: &mut Vec<i32>) {{\n    for (i, x) in v.iter().enumerate() {{\n        if *x < 0 {{\n            v.remove(i);\n        }}\n    }}\n}}"),
    ("C++", "erase every even number from the vector", "it crashes or skips elements",
     "void {fn}(std::vector<int>& v) {{\n    for (auto it = v.begin(); it != v.end(); ++it) {{\n        if (*it % 2 == 0) {{\n            v.erase(it);\n        }}\n    }}\n}}"),
    ("Java", "check whether the user typed 'yes'", "it returns false even when the input is yes",
     "static boolean {fn}(Scanner in) {{\n    String answer = in.nextLine().trim();\n    return answer == \"yes\";\n}}"),
    ("SQL", "count orders per customer, including customers with zero orders", "customers without orders are missing and some counts look too high",
     "SELECT c.id, c.name, COUNT(*) AS orders\nFROM customers c\nJOIN orders o ON o.customer_id = c.id\nJOIN order_items i ON i.order_id = o.id\nGROUP BY c.id, c.name;"),
    ("Bash", "back up every file in a folder", "it fails for file names with spaces",
     "for f in $(ls $SRC); do\n  cp $SRC/$f $DEST/$f.bak\ndone"),
    ("Java", "count events from several threads", "the final count is lower than expected",
     "class Counter {{\n    private int count = 0;\n    void {fn}() {{ count++; }}\n    int get() {{ return count; }}\n}}\n// 8 threads each call {fn}() 100000 times"),
    ("C", "compute the midpoint index for a search", "it gives a negative index for large arrays",
     "int {fn}(int lo, int hi) {{\n    return (lo + hi) / 2;\n}}"),
    ("JavaScript", "print 0, 1, 2 with a short delay", "it prints 3, 3, 3",
     "for (var i = 0; i < 3; i++) {{\n  setTimeout(function () {{ console.log(i); }}, 100);\n}}"),
    ("Python", "compute the n-th Fibonacci number", "it takes forever for n = 40",
     "def {fn}(n):\n    if n < 2:\n        return n\n    return {fn}(n - 1) + {fn}(n - 2)"),
    ("TypeScript", "get the length of the user's nickname", "it throws at runtime for some users even though it compiles",
     "interface User {{ name: string; nickname?: string }}\nfunction {fn}(u: User): number {{\n  return (u.nickname as string).length;\n}}"),
    ("Python", "remove every word shorter than four letters", "some short words survive",
     "def {fn}(words):\n    for w in words:\n        if len(w) < 4:\n            words.remove(w)\n    return words"),
    ("Python", "check whether the two totals match", "0.1 + 0.2 never equals 0.3",
     "def {fn}(a, b, expected):\n    return a + b == expected"),
    ("Go", "transfer money between two accounts safely", "the program occasionally freezes",
     "func {fn}(a, b *Account, amt int) {{\n    a.mu.Lock()\n    defer a.mu.Unlock()\n    b.mu.Lock()\n    defer b.mu.Unlock()\n    a.balance -= amt\n    b.balance += amt\n}}"),
    ("C", "build a greeting string", "it prints garbage or crashes",
     "char *{fn}(const char *name) {{\n    char buf[32];\n    sprintf(buf, \"Hello, %s!\", name);\n    return buf;\n}}"),
    ("Python", "iterate over the results twice: once to count, once to print", "the second loop prints nothing",
     "def {fn}(rows):\n    evens = (r for r in rows if r % 2 == 0)\n    print(sum(1 for _ in evens))\n    for r in evens:\n        print(r)"),
    ("Rust", "return the longest line of a text", "it doesn't compile because of a lifetime error",
     "fn {fn}(text: &str) -> &str {{\n    let owned = text.to_uppercase();\n    owned.lines().max_by_key(|l| l.len()).unwrap_or(\"\")\n}}"),
    ("SQL", "find users who have no email set", "the query returns no rows even though some emails are empty",
     "SELECT id, name\nFROM users\nWHERE email = NULL;"),
    ("JavaScript", "fetch data once when the component mounts", "the component re-renders in an endless loop",
     "function Profile({{ id }}) {{\n  const [data, setData] = useState(null);\n  useEffect(() => {{\n    fetch(`/api/users/${{id}}`).then(r => r.json()).then(setData);\n  }});\n  return <div>{{data?.name}}</div>;\n}}"),
    ("Java", "use points as keys in a map", "lookups fail after a point is moved",
     "class Point {{ int x, y;\n  public int hashCode() {{ return 31 * x + y; }}\n  public boolean equals(Object o) {{ Point p = (Point) o; return p.x == x && p.y == y; }}\n}}\n// map.put(p, \"A\"); p.x++; map.get(p) -> null"),
    ("Python", "average a list of numbers", "it crashes on some inputs and gives the wrong answer for integers in old code",
     "def {fn}(xs):\n    total = 0\n    for x in xs:\n        total += x\n    return total / len(xs)"),
    ("C++", "share a counter between threads", "the result is different every run",
     "int counter = 0;\nvoid {fn}() {{\n    for (int i = 0; i < 1000000; ++i) counter++;\n}}\n// std::thread t1({fn}), t2({fn}); t1.join(); t2.join();"),
    ("Go", "read a config file and return its contents", "the file handle leaks when parsing fails, and errors are silently ignored",
     "func {fn}(path string) Config {{\n    f, _ := os.Open(path)\n    var c Config\n    if err := json.NewDecoder(f).Decode(&c); err != nil {{\n        return Config{{}}\n    }}\n    f.Close()\n    return c\n}}"),
]
FN_NAMES = ["process", "run", "handle", "compute", "doWork", "helper", "update", "solve", "clean", "check", "step", "apply", "go_", "work"]


def fmt_code(rng, lang, code):
    tag = {"C++": "cpp", "C#": "csharp", "JavaScript": "js", "TypeScript": "ts", "Bash": "bash"}.get(lang, lang.lower())
    style = rng.randrange(4)
    if style == 0:
        return code
    if style == 1:
        return f"```\n{code}\n```"
    return f"```{tag}\n{code}\n```"


def g_code_debug(rng):
    lang, goal, symptom, code = ch(rng, BUGGY)
    fn = ch(rng, FN_NAMES).rstrip("_")
    if "{fn}" in code or "{{" in code:
        code = code.replace("{fn}", fn).replace("{{", "{").replace("}}", "}")
    block = fmt_code(rng, lang, code)
    q = ch(rng, [
        f"This {lang} code is supposed to {goal}, but {symptom}. Find the bug, explain why it happens, and give a corrected version.\n\n{block}",
        f"Why does this {lang} snippet misbehave? It should {goal}.\n\n{block}",
        f"{block}\n\nThis should {goal} but {symptom}. What's wrong and how do I fix it properly?",
        f"Debug this {lang} code. Expected: it should {goal}. Actual: {symptom}.\n\n{block}\n\nExplain the root cause and suggest a test that would have caught it.",
        f"Can you review this {lang} function? {cap(symptom)}.\n{block}",
        f"My teammate wrote this and {symptom}. Walk me through the problem and rewrite it correctly.\n\n{block}",
    ])
    return q, "code_debug"


MESSY = [
    ("Python", "def f(d):\n    r = []\n    for k in d:\n        if d[k] != None:\n            if d[k] > 0:\n                if k.startswith('a'):\n                    r.append((k, d[k] * 2))\n                else:\n                    r.append((k, d[k]))\n    r.sort(key=lambda x: x[1])\n    r.reverse()\n    return r"),
    ("JavaScript", "function getData(cb) {\n  loadUser(function (err, user) {\n    if (err) return cb(err);\n    loadOrders(user.id, function (err, orders) {\n      if (err) return cb(err);\n      loadPrices(orders, function (err, prices) {\n        if (err) return cb(err);\n        cb(null, { user, orders, prices });\n      });\n    });\n  });\n}"),
    ("Java", "public double price(String type, double base, boolean member) {\n    if (type.equals(\"book\")) { if (member) return base * 0.9; else return base; }\n    else if (type.equals(\"food\")) { if (member) return base * 0.95 * 1.05; else return base * 1.05; }\n    else if (type.equals(\"electronics\")) { if (member) return base * 0.97 * 1.2; else return base * 1.2; }\n    else { return base * 1.2; }\n}"),
    ("Go", "func Handle(w http.ResponseWriter, r *http.Request) {\n    id := r.URL.Query().Get(\"id\")\n    db, _ := sql.Open(\"postgres\", os.Getenv(\"DB\"))\n    row := db.QueryRow(\"SELECT name FROM users WHERE id = \" + id)\n    var name string\n    row.Scan(&name)\n    w.Write([]byte(\"<h1>\" + name + \"</h1>\"))\n}"),
    ("TypeScript", "function report(xs: any[]) {\n  let s = 0; let c = 0; let mx = -999999;\n  for (let i = 0; i < xs.length; i++) { if (xs[i].ok == true) { s = s + xs[i].v; c++; if (xs[i].v > mx) mx = xs[i].v; } }\n  return 'avg=' + (s / c) + ' max=' + mx;\n}"),
    ("C++", "class Shape { public: int type; double a, b; };\ndouble area(Shape s) {\n  if (s.type == 0) return 3.14159 * s.a * s.a;\n  if (s.type == 1) return s.a * s.b;\n  if (s.type == 2) return 0.5 * s.a * s.b;\n  return 0;\n}"),
    ("Python", "class Manager:\n    def do(self, action, user, data):\n        if action == 'create':\n            db.insert(user, data); log('created'); email(user, 'created')\n        elif action == 'update':\n            db.update(user, data); log('updated'); email(user, 'updated')\n        elif action == 'delete':\n            db.delete(user); log('deleted'); email(user, 'deleted')"),
]


def g_code_refactor(rng):
    lang, code = ch(rng, MESSY)
    block = fmt_code(rng, lang, code)
    goal = ch(rng, ["for readability and testability", "to remove the duplication", "to follow SOLID principles", "using modern idioms",
                    "so it's safe against injection and resource leaks", "to use async/await", "to use polymorphism instead of conditionals",
                    "without changing its behaviour, and write tests that prove the behaviour is unchanged"])
    q = ch(rng, [f"Refactor this {lang} code {goal}. Explain each change.\n\n{block}", f"{block}\n\nHow would you clean this up? Refactor it {goal} and justify the design.",
                 f"Please refactor the following {goal}, then list the remaining risks.\n{block}", f"Code review request: what's wrong with this {lang} code, and how would you restructure it?\n\n{block}"])
    return q, "code_refactor"


def g_code_tests(rng):
    if rng.random() < 0.5:
        lang, goal, _, code = ch(rng, BUGGY)
        code = code.replace("{fn}", ch(rng, FN_NAMES).rstrip("_")).replace("{{", "{").replace("}}", "}")
        fw = {"Python": "pytest", "Go": "the testing package", "JavaScript": "Jest", "TypeScript": "Vitest", "Rust": "cargo test",
              "C++": "GoogleTest", "Java": "JUnit 5", "C": "a minimal assert-based harness", "SQL": "a set of fixture rows and expected outputs",
              "Bash": "bats"}.get(lang, "your preferred framework")
        q = f"Write a thorough test suite with {fw} for this {lang} code, which should {goal}. Cover edge cases, and say which tests fail on the current code and why.\n\n{fmt_code(rng, lang, code)}"
    else:
        lang = ch(rng, LANGS)
        thing = ch(rng, ["a function that parses ISO-8601 durations like P3DT4H", "a shopping-cart total calculator with discounts, tax and coupons",
                         "a password strength checker", "a function that merges overlapping intervals", "a URL slug generator that handles Unicode",
                         "a retry helper with exponential backoff and jitter", "a bank transfer service that must never lose money",
                         "a date-range overlap checker across time zones", "an LRU cache", "a rate limiter"])
        q = ch(rng, [f"Design a test plan and write property-based and example-based tests in {lang} for {thing}. Explain what each group of tests protects against.",
                     f"Write unit tests in {lang} for {thing}, including edge cases and at least one property-based test. Then implement the code so the tests pass."])
    return q, "code_tests"


def g_concurrency(rng):
    lang = ch(rng, ["Java", "Go", "Rust", "C++", "Python", "C#", "Kotlin"])
    n, k = rng.randint(100, 10000), rng.randint(2, 16)
    q = ch(rng, [
        f"Implement a bounded blocking queue in {lang} using locks and condition variables, and explain how you avoid lost wake-ups.",
        f"Write a worker pool in {lang} that processes {n} jobs with at most {k} running at once, supports cancellation, and collects all errors. Explain the synchronisation.",
        f"Implement a read-write lock in {lang} that prevents writer starvation. Explain the fairness guarantees.",
        f"Solve the dining philosophers problem in {lang} with {k} philosophers so that no one deadlocks or starves. Prove it.",
        f"Write a concurrent web crawler in {lang} that visits at most {n} pages, limits itself to {k} requests per host at a time, and never visits a URL twice.",
        f"Explain the difference between a mutex, a semaphore and a condition variable, then implement a counting semaphore in {lang} using only a mutex and a condition variable.",
        f"Implement a lock-free single-producer single-consumer ring buffer in {lang} and explain the memory ordering you need.",
        f"Design and implement a thread-safe cache in {lang} where concurrent requests for the same missing key only trigger one load (single-flight).",
        f"In {lang}, implement a pipeline of three stages connected by channels or queues, with back-pressure and clean shutdown when the input ends or an error occurs.",
        f"Write a {lang} program that parallelises a merge sort across {k} threads and explain the speed-up you expect on {k} cores.",
    ])
    return q, "concurrency"


COMPLEXITY_SNIPPETS = [
    "def f(n):\n    total = 0\n    i = 1\n    while i < n:\n        for j in range(i):\n            total += j\n        i *= 2\n    return total",
    "def g(arr):\n    if len(arr) <= 1:\n        return arr\n    mid = len(arr) // 3\n    return g(arr[:mid]) + g(arr[mid:2*mid]) + g(arr[2*mid:])",
    "for (int i = 0; i < n; i++)\n    for (int j = i; j < n; j += i + 1)\n        work(i, j);",
    "def h(n):\n    if n <= 1:\n        return 1\n    return h(n - 1) + h(n - 1)",
    "def count(s):\n    seen = set()\n    for i in range(len(s)):\n        for j in range(i + 1, len(s) + 1):\n            seen.add(s[i:j])\n    return len(seen)",
    "func k(n int) int {\n    if n <= 1 { return 0 }\n    s := 0\n    for i := 0; i < n; i++ { s += i }\n    return s + k(n/2) + k(n/2)\n}",
]


def g_complexity(rng):
    if rng.random() < 0.6:
        snip = ch(rng, COMPLEXITY_SNIPPETS)
        q = ch(rng, [f"What is the time complexity of this code? Explain step by step.\n\n```\n{snip}\n```",
                     f"Analyse the running time and memory use of the following, giving a tight bound with justification:\n{snip}",
                     f"```\n{snip}\n```\nDerive the big-O complexity and say whether it can be improved."])
    else:
        q = ch(rng, [
            "Prove that building a binary heap bottom-up takes O(n) time.", "Explain why the amortised cost of appending to a dynamic array is O(1), using the potential method.",
            "Compare the worst-case, average-case and amortised complexity of hash tables with chaining versus open addressing.",
            "Why is quicksort usually faster than heapsort in practice even though both are O(n log n) on average? Discuss cache behaviour and constants.",
            "Show that union-find with path compression and union by rank runs in nearly constant amortised time, and explain where the inverse Ackermann function comes from.",
            "Explain the complexity of Dijkstra's algorithm with a binary heap versus a Fibonacci heap, and when the difference matters.",
            "Is it possible to find the k-th smallest element of an unsorted array in linear worst-case time? Explain the algorithm and prove the bound.",
        ])
    return q, "complexity_analysis"


SQL_SCHEMAS = [
    ("customers(id, name, country, created_at), orders(id, customer_id, ordered_at, status), order_items(order_id, product_id, quantity, unit_price), products(id, name, category)",
     ["For each country, find the top 3 customers by total revenue in the last 12 months, with ties handled deterministically.",
      "Find customers who placed at least one order in every month of 2024.", "Compute a 7-day rolling revenue total per product category.",
      "For each customer, find the time between their first and second order, and the median of that across all customers.",
      "Find products whose revenue fell by more than 30% between the last two quarters."]),
    ("students(id, name, year), courses(id, title, credits), enrolments(student_id, course_id, term, grade)",
     ["For each term, rank students by credit-weighted GPA and show the top 5 per year group.",
      "Find students who improved their GPA in every consecutive term they were enrolled.", "List courses where the failure rate is more than twice the average failure rate."]),
    ("flights(id, origin, destination, departs_at, arrives_at, carrier), bookings(id, flight_id, passenger_id, price)",
     ["Find all two-leg itineraries from LIS to SFO with a connection between 1 and 4 hours.",
      "For each carrier, compute the average load-adjusted revenue per route and the route with the biggest month-on-month change.",
      "Detect passengers who have overlapping bookings."]),
    ("events(user_id, event_type, occurred_at), users(id, signup_at, plan)",
     ["Build a weekly retention cohort table: for each signup week, the share of users active in each of the following 8 weeks.",
      "Compute session counts where a session ends after 30 minutes of inactivity.", "Find the funnel conversion from 'view' to 'add_to_cart' to 'purchase' within 24 hours, per plan."]),
]


def g_sql(rng):
    schema, tasks = ch(rng, SQL_SCHEMAS)
    task = ch(rng, tasks)
    dialect = ch(rng, ["PostgreSQL", "MySQL 8", "SQLite", "BigQuery", "standard SQL", "SQL Server"])
    schema_lines = schema.replace("), ", ")\n")
    q = ch(rng, [f"Given the tables {schema}, write a {dialect} query to do the following. {task} Explain how the query works and how you'd index for it.",
                 f"Schema:\n{schema_lines}\n\nTask: {task}\nUse {dialect}. Walk me through each CTE.",
                 f"I have {schema}. {task} Please use window functions where they help ({dialect})."])
    return q, "sql_query"


SYSTEMS = [
    "a rate limiter for a public API", "a URL shortener", "a chat backend with group chats and read receipts", "a news feed for a social network",
    "a ride-hailing dispatch system", "a distributed cache", "a notification service (push, email and SMS)", "a file sync service like a personal cloud drive",
    "a real-time game leaderboard", "a double-entry payment ledger", "search autocomplete", "a video transcoding pipeline",
    "a metrics and alerting system", "a distributed job scheduler", "a feature-flag service", "an inventory system for flash sales",
    "a hotel booking system", "a collaborative text editor", "an API gateway", "a log aggregation pipeline",
    "a recommendation pipeline for an online shop", "an IoT telemetry ingestion platform", "a web crawler", "multi-tenant authentication for a SaaS product",
    "a ticketing system for concerts that prevents overselling", "an online code judge", "a food-delivery order tracking system",
]


def g_system_design(rng):
    sysname = ch(rng, SYSTEMS)
    users = ch(rng, ["10,000", "1 million", "50 million", "500 million"])
    qps = ch(rng, ["500", "20,000", "200,000", "2 million"])
    lat = ch(rng, ["50 ms", "100 ms", "200 ms", "1 second"])
    reqs = sample(rng, [f"p99 latency under {lat}", f"{qps} requests per second at peak", f"{users} daily active users", "99.95% availability",
                        "multi-region deployment", "strong consistency for writes", "a small team of four engineers", "a tight cloud budget",
                        "GDPR compliance", "graceful degradation when a dependency is down", "zero data loss"], rng.randint(2, 4))
    sections = sample(rng, ["API design", "data model", "storage choices", "scaling strategy", "caching", "failure modes", "monitoring",
                            "trade-offs", "capacity estimates", "security", "a rollout plan"], rng.randint(3, 5))
    r = rng.random()
    if r < 0.25:
        q = ch(rng, [f"Design {sysname}.", f"How would you design {sysname}?", f"System design: {sysname}.", f"design {sysname} that scales"])
    elif r < 0.7:
        q = f"Design {sysname} with these requirements: {'; '.join(reqs)}. Cover {join_and(sections)}."
    else:
        q = f"I'm preparing for a system design interview. Walk me through designing {sysname}.\nRequirements:\n" + "\n".join(f"- {x}" for x in reqs) + f"\nPlease include {join_and(sections)}, and explain the trade-offs you make."
    return q, "system_design"


# ----- long structured writing, analysis, planning -----

ESSAY_TOPICS = [
    "whether remote work is good for junior employees", "the case for protected cycle lanes in mid-sized cities", "nuclear power's role in decarbonisation",
    "social media's effect on teenagers' mental health", "a four-day working week", "AI tutors in secondary schools", "why public libraries still matter",
    "the environmental cost of fast fashion", "public funding for space exploration", "universal basic income", "congestion charging in city centres",
    "banning phones in classrooms", "the ethics of gene editing in agriculture", "open-source software in government", "tourism caps in historic cities",
    "the future of local newspapers", "lab-grown meat", "compulsory voting", "rent control", "the value of studying history",
    "the right to repair electronics", "standardised testing", "high-speed rail versus short-haul flights", "nature-based flood defences",
]
AUDIENCES = ["a general audience", "policy makers", "university students", "a school board", "investors", "a city council", "readers of a science magazine"]


def g_essay(rng):
    t = ch(rng, ESSAY_TOPICS)
    w = ch(rng, [800, 1000, 1200, 1500, 2000, 2500])
    aud = ch(rng, AUDIENCES)
    q = ch(rng, [
        f"Write {art(w)} {w:,}-word argumentative essay on {t}. Include an introduction with a clear thesis, three body sections with evidence, a section addressing counterarguments, and a conclusion.",
        f"Write an essay ({w} words) for {aud} on {t}, weighing the strongest arguments on both sides before reaching a reasoned position.",
        f"Draft a persuasive op-ed about {t} aimed at {aud}. Use headings, cite the kinds of evidence you would rely on, and end with concrete recommendations. Around {w} words.",
        f"Write a compare-and-contrast essay on {t}, structured as: background, main positions, economic effects, social effects, open questions, conclusion.",
        f"Write a detailed essay on {t}",
        f"I need a well-structured {w}-word essay on {t} for {aud}. Use sub-headings, and make sure every claim is backed by reasoning or an example.",
    ])
    return q, "essay"


BUSINESS_IDEAS = ["a mobile bike repair service", "a subscription box for home bakers", "a co-working space for parents with a crèche",
                  "a refill shop for household cleaning products", "an app that matches volunteers to local charities", "a vegan food truck",
                  "a small-batch hot sauce brand", "a tutoring marketplace for adult learners", "a repair café franchise", "a dog daycare",
                  "a climbing gym in a converted warehouse", "a B2B tool for restaurant inventory", "a rental service for baby equipment"]
SUBJECTS = ["fractions", "photosynthesis", "the water cycle", "persuasive writing", "the French Revolution", "basic probability",
            "climate change", "introductory Python", "the solar system", "poetry analysis", "supply and demand", "simple circuits"]


def g_longform(rng):
    k = rng.randrange(8)
    w = ch(rng, [600, 800, 1000, 1500, 2000])
    city, _ = ch(rng, CITIES)
    co = ch(rng, COMPANIES)
    if k == 0:
        idea = ch(rng, BUSINESS_IDEAS)
        q = (f"Write a business plan for {idea} in {city}. Include an executive summary, market analysis with competitors, target customers, pricing, "
             f"marketing plan, operations, a three-year financial projection with assumptions, and key risks.")
        return q, "business_plan"
    if k == 1:
        subj = ch(rng, SUBJECTS)
        grade = ch(rng, ["Year 5", "grade 7", "a secondary school class of 15-year-olds", "first-year university students", "adult learners"])
        mins = ch(rng, [45, 60, 90])
        q = f"Create a detailed {mins}-minute lesson plan on {subj} for {grade}. Include learning objectives, a starter activity, main activities with timings, differentiation for weaker and stronger students, assessment, and homework."
        if rng.random() < 0.4:
            q = f"Design a four-week unit on {subj} for {grade}: weekly goals, lesson-by-lesson outline, assessments with rubrics, and how the unit builds on prior knowledge."
        return q, "lesson_plan"
    if k == 2:
        q = ch(rng, [
            f"Write a project proposal for {co} to replace its paper-based expense process with a digital system. Include background, objectives, scope, timeline, budget, risks and success metrics (about {w} words).",
            f"Draft a grant proposal for a community project in {city} that teaches older residents digital skills. Sections: need statement, goals, activities, evaluation plan, budget justification, sustainability.",
            f"Write a proposal to the board of {co} recommending a move to a hybrid working model, with evidence, costs, risks and an implementation plan.",
        ])
        return q, "proposal"
    if k == 3:
        q = ch(rng, [
            f"Write a post-incident report for a 3-hour outage at {co} caused by a bad database migration: timeline, root cause analysis, impact, what went well, what went wrong, and action items with owners.",
            f"Write {art(w)} {w}-word quarterly report for {co}'s leadership summarising sales, customer churn, hiring and risks, with recommendations. Invent plausible figures and keep them internally consistent.",
            f"Write a technical design document for adding multi-currency support to an existing invoicing system: goals, non-goals, data model changes, migration plan, rollout, and open questions.",
            f"Prepare a policy memo for the mayor of {city} on reducing traffic deaths, comparing three options with costs, expected impact and political feasibility.",
        ])
        return q, "report"
    if k == 4:
        genre = ch(rng, ["science-fiction", "mystery", "literary", "fantasy", "historical", "comic"])
        q = ch(rng, [
            f"Write {art(w)} {w}-word {genre} short story with a three-act structure, set in {city}, told from two alternating points of view, with a twist that is foreshadowed early.",
            f"Write the first chapter (about {w} words) of a {genre} novel. Establish the protagonist, the setting and the central conflict, and end on a hook. Then give a one-paragraph outline of the remaining chapters.",
            f"Write a {genre} story in five scenes where each scene is told at a different time of day, and the final scene reframes the first one.",
        ])
        return q, "long_creative_writing"
    if k == 5:
        q = ch(rng, [
            f"Create a 12-week training curriculum for new customer-support agents at {co}: weekly topics, exercises, assessments and how to measure readiness.",
            f"Write a complete onboarding guide for a new software engineer joining {co}, covering the first day, first week and first 90 days, with goals and checklists.",
            f"Write user documentation for a home energy-monitoring app: getting started, features, troubleshooting, FAQ, and a glossary.",
        ])
        return q, "documentation"
    if k == 6:
        q = ch(rng, [
            f"Write a literature-review style overview of research on {ch(rng, ['sleep and learning', 'microplastics in drinking water', 'urban heat islands', 'spaced repetition', 'bilingualism and cognition'])}, organised by theme, noting where findings conflict and what gaps remain.",
            f"Write a structured explainer (about {w} words) on how {ch(rng, ['central banks fight inflation', 'the electricity grid balances supply and demand', 'vaccines are tested before approval', 'elections are counted and audited', 'container shipping works'])}, with sections and a summary table.",
        ])
        return q, "explainer"
    q = ch(rng, [
        f"Write a detailed speech (about {w} words) for the opening of a new library in {city}, with a clear structure, one personal anecdote and a call to action.",
        f"Write a cover letter and a one-page CV outline for someone moving from teaching into UX research, highlighting transferable skills with concrete examples.",
        f"Write a persuasive fundraising letter for a hospice, then a shorter version for social media, and explain the differences in approach.",
    ])
    return q, "long_writing"


COMPARE_PAIRS = [
    ("PostgreSQL", "MongoDB", "an e-commerce order system"), ("Kafka", "RabbitMQ", "an event-driven microservices platform"),
    ("React", "Svelte", "a small team building a dashboard"), ("Kubernetes", "a managed PaaS", "a startup with three engineers"),
    ("gRPC", "REST", "internal service-to-service calls"), ("Rust", "Go", "a high-throughput network proxy"),
    ("a monolith", "microservices", "a 20-person product team"), ("server-side rendering", "a single-page app", "a content-heavy news site"),
    ("DynamoDB", "Cassandra", "a time-series workload"), ("Redis", "Memcached", "session caching"), ("GraphQL", "REST", "a public API"),
    ("Terraform", "Pulumi", "managing cloud infrastructure"), ("SQLite", "PostgreSQL", "a desktop app that may later sync to the cloud"),
    ("renting", "buying a flat", "someone who may move cities in five years"), ("leasing", "buying a car", "a family that drives 20,000 km a year"),
    ("index funds", "individual stocks", "a new investor with a 20-year horizon"), ("heat pumps", "gas boilers", "an old, poorly insulated house"),
    ("trains", "planes", "business travel within Europe"), ("a PhD", "going straight into industry", "a machine-learning graduate"),
    ("Scrum", "Kanban", "an operations team with lots of interrupts"), ("hiring contractors", "hiring full-time staff", "a six-month project"),
]


def g_compare(rng):
    a, b, ctx = ch(rng, COMPARE_PAIRS)
    dims = sample(rng, ["cost", "performance", "scalability", "operational complexity", "risk", "learning curve", "long-term flexibility",
                        "reliability", "tax implications", "environmental impact", "team skills", "vendor lock-in"], rng.randint(3, 5))
    q = ch(rng, [
        f"Compare {a} and {b} for {ctx}. Cover {join_and(dims)}, and finish with a recommendation and the conditions under which you'd change it.",
        f"{a} or {b} for {ctx}? Give me a structured analysis of the trade-offs ({', '.join(dims)}) and a decision.",
        f"Write a decision document comparing {a} and {b} for {ctx}, with a comparison table, risks, and a migration or adoption plan.",
        f"What are the pros and cons of {a} versus {b} for {ctx}? Quantify where you can and explain your reasoning.",
        f"{a} vs {b} for {ctx}",
    ])
    return q, "comparison_analysis"


def project_schedule(rng):
    n = rng.randint(6, 9)
    names = "ABCDEFGHI"[:n]
    descs = sample(rng, ["requirements", "design", "procure hardware", "build backend", "build frontend", "write tests", "security review",
                         "data migration", "user training", "pilot launch", "documentation", "load testing", "legal sign-off", "marketing prep"], n)
    lines = ["| Task | Description | Duration (days) | Depends on |", "|---|---|---|---|"]
    for i, t in enumerate(names):
        deps = sorted(rng.sample(names[:i], min(i, rng.randint(0, 2)))) if i else []
        lines.append(f"| {t} | {descs[i]} | {rng.randint(2, 15)} | {', '.join(deps) if deps else '-'} |")
    table = "\n".join(lines)
    q = ch(rng, [
        f"Here is a project plan:\n\n{table}\n\nFind the critical path and the earliest possible finish. Compute the slack for each task, and explain what happens if task {ch(rng, names)} slips by 3 days.",
        f"{table}\n\nUsing this task table, build a schedule assuming only {ch(rng, [2, 3])} people can work at once and each task needs one person. Show your reasoning and the resulting timeline.",
        f"Project tasks:\n{table}\n\nDraw a text Gantt chart, identify the critical path, and suggest two ways to shorten the project by a week with their risks.",
    ])
    return q


def g_planning(rng):
    k = rng.randrange(6)
    city, country = ch(rng, CITIES)
    days = rng.randint(3, 10)
    budget = rng.randint(4, 40) * 100
    if k == 0:
        cons = sample(rng, ["we're vegetarian", "we travel with a toddler who naps after lunch", "no flights", "museums are closed on Mondays",
                            "one of us uses a wheelchair", "we want one rest day", "we arrive late on the first night", "we love hiking but not crowds",
                            "we want to see at least two nearby towns", "public transport only"], rng.randint(2, 4))
        q = (f"Plan {art(days)} {days}-day trip to {city}, {country}, for two people with a total budget of {ch(rng, ['$', '€', '£'])}{budget:,} including accommodation. "
             f"Constraints: {'; '.join(cons)}. Give a day-by-day itinerary with estimated costs, and show that the total stays within budget.")
        return q, "itinerary_planning"
    if k == 1:
        return project_schedule(rng), "project_planning"
    if k == 2:
        subjects = sample(rng, ["calculus", "organic chemistry", "statistics", "macroeconomics", "French", "physics", "history", "programming", "biology"], rng.randint(3, 5))
        weeks = rng.randint(3, 10)
        q = (f"I have exams in {join_and(subjects)} in {weeks} weeks. I can study {rng.randint(10, 30)} hours a week, "
             f"{subjects[0]} is my weakest subject and the {subjects[-1]} exam comes first. Build a week-by-week study plan with spaced repetition and practice tests, and justify the allocation of hours.")
        return q, "study_planning"
    if k == 3:
        staff = sample(rng, FIRST, rng.randint(4, 6))
        rules = [f"{staff[0]} can't work weekends", f"{staff[1]} wants at most three shifts", f"{staff[2]} and {staff[3]} can't work the same shift",
                 "every shift needs at least two people", "nobody works more than five days in a row", "each morning shift needs someone with a first-aid certificate "
                 f"({staff[-1]} and {staff[0]} have one)", "no one should do a night shift followed by a morning shift"]
        q = (f"Make a one-week rota for a café with morning and evening shifts, seven days a week, using {join_and(staff)}. Rules: {'; '.join(sample(rng, rules, rng.randint(3, 5)))}. "
             "Show the rota as a table and explain how each rule is satisfied, or explain which rule must be relaxed if it's impossible.")
        return q, "scheduling"
    if k == 4:
        guests = rng.randint(40, 200)
        q = (f"Plan a wedding for {guests} guests in {city} with a budget of {ch(rng, ['$', '€', '£'])}{budget * 10:,}. Break the budget into categories with justification, "
             f"produce a 12-month planning timeline, and list the three biggest risks with mitigations.")
        if rng.random() < 0.5:
            q = (f"Organise a two-day company offsite for {guests} people in {city} with a budget of {ch(rng, ['$', '€'])}{budget * 20:,}. Include venue criteria, an agenda with timings, "
                 f"catering for dietary needs, travel logistics, and a cost breakdown.")
        return q, "event_planning"
    goal = ch(rng, ["run a half marathon in 16 weeks", "lose 5 kg while keeping strength", "do 10 pull-ups", "cycle 100 km in one day"])
    q = (f"Design a training plan to {goal}. I'm {rng.randint(22, 60)}, currently {ch(rng, ['fairly sedentary', 'jogging twice a week', 'going to the gym occasionally'])}, "
         f"and have {rng.randint(3, 6)} hours a week. Give a week-by-week progression, explain the reasoning behind the load increases, and how to adjust if I get injured.")
    return q, "fitness_planning"


def g_data_analysis(rng):
    k = rng.randrange(4)
    if k == 0:
        regions = sample(rng, ["North", "South", "East", "West", "Central"], rng.randint(3, 4))
        months = MONTHS[rng.randrange(6):][:rng.randint(4, 6)]
        lines = ["| Region | " + " | ".join(m[:3] for m in months) + " |", "|---" * (len(months) + 1) + "|"]
        for reg in regions:
            base = rng.randint(80, 400)
            vals = [max(10, base + rng.randint(-40, 60) * (i + 1) // 2) for i in range(len(months))]
            lines.append(f"| {reg} | " + " | ".join(str(v) for v in vals) + " |")
        table = "\n".join(lines)
        q = (f"Monthly sales (in thousands):\n\n{table}\n\n" + ch(rng, [
            "Calculate each region's total and month-on-month growth rate, identify which region grew fastest overall, and forecast next month with a justified method.",
            "Which region is the most volatile? Compute the mean and standard deviation for each region, then write a short analysis with recommendations.",
            "Analyse this data: totals, averages, trends and anomalies. Show every calculation and summarise the findings for a manager."]))
        return q, "data_analysis"
    if k == 1:
        va, vb = rng.randint(4000, 30000), rng.randint(4000, 30000)
        ca, cb = int(va * rng.uniform(0.02, 0.08)), int(vb * rng.uniform(0.02, 0.08))
        q = (f"We ran an A/B test on our sign-up page. Variant A: {va:,} visitors, {ca:,} sign-ups. Variant B: {vb:,} visitors, {cb:,} sign-ups. "
             f"Is the difference statistically significant at the 5% level? Compute the conversion rates, the z-statistic and a 95% confidence interval for the difference, "
             f"and tell me what you'd recommend, including any caveats about the test design.")
        return q, "data_analysis"
    if k == 2:
        rows = [(ch(rng, FIRST), rng.randint(1, 12), rng.randint(40, 100), rng.randint(50, 100)) for _ in range(rng.randint(6, 9))]
        csv = "student,hours_studied,homework_score,exam_score\n" + "\n".join(f"{a},{b},{c},{d}" for a, b, c, d in rows)
        q = (f"{csv}\n\nUsing this data, compute the correlation between hours studied and exam score, fit a simple linear regression, "
             f"and interpret the slope. Is homework or study time the better predictor here? Show your calculations and discuss limitations of such a small sample.")
        return q, "data_analysis"
    items = [(ch(rng, [p for p, _ in PRODUCTS]), rng.randint(5, 120), round(rng.uniform(3, 90), 2), round(rng.uniform(1, 60), 2)) for _ in range(rng.randint(5, 8))]
    lines = ["product | units sold | price | unit cost"] + [f"{a} | {b} | {c} | {d}" for a, b, c, d in items]
    q = ("\n".join(lines) + "\n\n" + ch(rng, [
        "Work out revenue, gross profit and margin per product, rank the products by profit, and recommend which two to discontinue, explaining your reasoning.",
        "If we raise all prices by 8% and expect unit sales to drop by 5%, what happens to total revenue and total profit? Show each step.",
        "Build a short profitability analysis from this table, including a Pareto breakdown of where the profit comes from."]))
    return q, "data_analysis"


def g_decision(rng):
    runway = rng.randint(6, 24)
    burn = rng.randint(50, 400) * 1000
    p = rng.randint(20, 70)
    q = ch(rng, [
        f"Our startup has {runway} months of runway at a burn of ${burn:,} per month. Option A: raise a bridge round now at a lower valuation. Option B: cut costs by 30% and try to reach profitability. "
        f"Option C: sell the company to a competitor who has made an informal offer. Analyse each option with rough expected values, risks and second-order effects, and recommend one.",
        f"A factory can invest ${burn * 10:,} in automation that has a {p}% chance of cutting costs by 25% and otherwise cuts them by 5%. Annual costs are ${burn * 8:,}. "
        f"Over five years with an 8% discount rate, should they invest? Build a decision tree, compute NPV for each branch, and discuss what the numbers don't capture.",
        f"I've been offered two jobs: one pays ${burn // 4:,} with a {ch(rng, [45, 60, 90])}-minute commute and great learning, the other pays ${burn // 4 + 15000:,}, is fully remote but in a shrinking industry. "
        f"Help me build a weighted decision matrix, suggest sensible weights, and explain how the decision changes under different assumptions.",
        f"A city must choose between spending its ${burn * 50:,} transport budget on bus rapid transit, road resurfacing, or a cycle network. Lay out the criteria, evaluate each option, and recommend a portfolio.",
        f"Should a mid-sized software company with {rng.randint(40, 400)} engineers move from quarterly to continuous releases? Analyse the costs, risks, organisational changes and metrics to watch, and propose a phased plan.",
        f"Our product has {rng.randint(2, 50)},000 users and a churn rate of {rng.randint(2, 9)}% a month. Pricing is ${rng.randint(5, 40)}/month. Evaluate whether to introduce an annual plan with a 20% discount, "
        f"modelling the effect on revenue over 24 months under optimistic and pessimistic assumptions.",
        "Develop a go-to-market strategy for a new B2B analytics product entering a crowded market: segmentation, positioning, pricing, channels, and a 6-month launch plan with milestones.",
        "A hospital must decide how to allocate 10 ICU beds between scheduled surgeries and emergency admissions. Model the trade-off, propose a policy, and explain the ethical considerations.",
    ])
    return q, "decision_analysis"


def g_science(rng):
    m = rng.randint(2, 9)
    r = rng.randint(2, 9)
    h = rng.randint(5, 80)
    v = rng.randint(5, 40)
    p, qq = ch(rng, [(5, 11), (7, 13), (11, 17), (3, 11), (13, 19), (5, 17)])
    q = ch(rng, [
        "Explain step by step why the sky is blue and sunsets are red, including how Rayleigh scattering depends on wavelength.",
        "Walk through how a refrigerator moves heat from a cold place to a warm one, referring to each stage of the vapour-compression cycle and the second law of thermodynamics.",
        f"Calculate the escape velocity from a planet with {m} times Earth's mass and {r} times Earth's radius. Derive the formula first and explain each step.",
        f"A ball is thrown at {v} m/s at {ch(rng, [30, 45, 60])} degrees from a cliff {h} m high. How far from the base does it land, and what is its speed on impact? Show the full working.",
        "Explain how public-key cryptography works, then do a complete RSA example by hand with p = {p} and q = {q}: choose e, compute d, and encrypt and decrypt a small message.".format(p=p, q=qq),
        "Explain why ice floats, and what would happen to lakes and marine life if it didn't. Reason it through step by step.",
        "Estimate how many piano tuners work in a city of 2 million people. Show each assumption and calculation in a Fermi estimate, and give a plausible range.",
        "Explain how mRNA vaccines lead to immunity, step by step from injection to memory cells, and discuss why some require booster doses.",
        "Why do we have seasons? Explain the role of axial tilt and refute the common misconception about distance to the Sun with numbers.",
        f"How much energy is needed to heat {m * 10} litres of water from {r * 2}°C to boiling, and how long would a {rng.randint(1, 3)} kW kettle take at 85% efficiency? Show the calculation.",
        "Explain how a transistor works and how billions of them combine to perform addition in a CPU, building up from logic gates to a ripple-carry adder.",
        "Explain natural selection using antibiotic resistance as a worked example, including why finishing a course of antibiotics matters.",
        f"A {m * 100} kg car accelerates from rest to {v} m/s in {r + 3} seconds. Find the average force, the work done and the average power, and discuss what real-world losses would change.",
        "Explain step by step how GPS receivers determine their position, including why relativity corrections are needed.",
        "Explain how the greenhouse effect works at the level of molecules and infrared radiation, and why CO2 matters even at low concentration.",
        "How do noise-cancelling headphones work? Explain the physics of destructive interference and the engineering limitations.",
        f"Balance the combustion reaction of {ch(rng, ['propane', 'butane', 'ethanol', 'octane', 'glucose'])} and compute the mass of CO2 produced from {m * 10} g of fuel, showing each step.",
        "Explain why the Monty Hall answer is to switch, then generalise to n doors with the host opening k of them.",
    ])
    return q, "science_explanation"


SHORT_COMPLEX = [
    ("Prove that there is no largest prime.", "proof"), ("Show that the square root of 2 is irrational.", "proof"),
    ("Prove that 0.999... = 1 rigorously.", "proof"), ("Prove the AM-GM inequality for n numbers.", "proof"),
    ("Prove Euler's formula V - E + F = 2 for planar graphs.", "proof"), ("Prove that every bounded monotone sequence converges.", "proof"),
    ("Prove that a group of prime order is cyclic.", "proof"), ("Prove Fermat's little theorem.", "proof"),
    ("Prove that the determinant of a product is the product of determinants.", "proof"), ("Prove the pigeonhole principle and give two non-trivial applications.", "proof"),
    ("Implement an LRU cache in Go with O(1) operations.", "code_implementation"), ("Write a thread-safe singleton in C++ and explain why it's safe.", "concurrency"),
    ("Implement a red-black tree in Rust.", "code_implementation"), ("Write a Raft leader election in Go.", "code_implementation"),
    ("Implement a garbage collector for a toy language.", "code_implementation"), ("Write a SAT solver using DPLL in Python.", "code_implementation"),
    ("Build a tiny regex engine in TypeScript.", "code_implementation"), ("Write a lexer and parser for a calculator language in Haskell.", "code_implementation"),
    ("Implement Paxos in Java.", "code_implementation"), ("Write a B+ tree in C.", "code_implementation"),
    ("Implement a lock-free stack in Rust.", "concurrency"), ("Write an async HTTP load tester in Rust with tokio.", "code_implementation"),
    ("Design Twitter.", "system_design"), ("Design a distributed rate limiter.", "system_design"), ("Design Google Docs.", "system_design"),
    ("Design a payment system that never double-charges.", "system_design"), ("How would you build Uber's surge pricing?", "system_design"),
    ("Solve x^3 - 6x^2 + 11x - 6 = 0 and explain the method.", "multi_step_math"), ("Find all integer solutions of x^2 - y^2 = 45.", "multi_step_math"),
    ("Evaluate the integral of ln(x)/x^2 from 1 to infinity.", "derivation"), ("Derive the Black-Scholes PDE.", "derivation"),
    ("How many ways can 8 rooks be placed on a chessboard so none attack each other?", "combinatorics_probability"),
    ("What is the expected number of coin flips to get HTH?", "combinatorics_probability"),
    ("Compare TCP congestion control algorithms: Reno, CUBIC and BBR.", "comparison_analysis"),
    ("Explain the CAP theorem with concrete examples of each trade-off.", "comparison_analysis"),
    ("Write a 2,000-word essay on the causes of the First World War.", "essay"), ("Write a business plan for a bakery.", "business_plan"),
    ("Plan a 10-day trip through Japan on a budget.", "itinerary_planning"), ("Explain quantum entanglement with a worked example.", "science_explanation"),
    ("Why does P vs NP matter? Explain with examples.", "science_explanation"), ("Explain how backpropagation works, deriving the gradients.", "derivation"),
    ("Derive the gradient of the softmax cross-entropy loss.", "derivation"), ("Find the flaw in the proof that all horses are the same colour.", "proof"),
    ("Solve the Tower of Hanoi for n disks and prove the move count.", "proof"), ("Write a compiler front end for a subset of C.", "code_implementation"),
    ("Analyse the time complexity of the Euclidean algorithm.", "complexity_analysis"), ("Design a database schema for a hospital and justify it.", "system_design"),
    ("Write a SQL query that finds the second highest salary per department, handling ties.", "sql_query"),
    ("Debug: my Python multiprocessing pool hangs on macOS.", "code_debug"), ("Why is my Rust async code blocking the executor?", "code_debug"),
    ("Refactor a 500-line God class into a clean architecture.", "code_refactor"), ("Write a Kubernetes operator in Go that manages backups.", "code_implementation"),
    ("Create a marketing strategy for a new energy drink.", "decision_analysis"), ("Build a financial model for a SaaS startup.", "decision_analysis"),
    ("Write a detailed lesson plan on the causes of inflation.", "lesson_plan"), ("Explain how a compiler optimises loops.", "science_explanation"),
    ("Solve: three switches, one bulb in another room, one visit. Explain.", "logic_puzzle"),
    ("Prove that you can't tile a chessboard with two opposite corners removed using dominoes.", "proof"),
    ("Find a closed form for the n-th Catalan number and prove it.", "derivation"), ("Implement a Bloom filter in Java and analyse its error rate.", "code_implementation"),
    ("Write a bash script that rotates logs, compresses old ones and keeps 7 days.", "code_implementation"),
    ("Write a TypeScript type that deeply makes every property readonly, and explain it.", "code_implementation"),
]


def g_short_complex(rng):
    t, cat = ch(rng, SHORT_COMPLEX)
    return t, cat



# ----- long inputs with complex instructions (so that length and passages do not imply "simple") -----

LONG_PROGRAMS = [
    ("Python", """import json

TAX = 0.2

class Inventory:
    def __init__(self, items={}):
        self.items = items          # sku -> {"price": float, "qty": int}

    def add(self, sku, price, qty):
        if sku in self.items:
            self.items[sku]["qty"] += qty
        else:
            self.items[sku] = {"price": price, "qty": qty}

    def remove(self, sku, qty):
        try:
            self.items[sku]["qty"] -= qty
        except Exception:
            pass

    def discount(self, total):
        tiers = [(100, 0.05), (500, 0.1), (1000, 0.15)]
        rate = 0
        for i in range(len(tiers) - 1):
            if total > tiers[i][0]:
                rate = tiers[i][1]
        return total * (1 - rate)

    def order_total(self, order):
        total = 0.0
        for sku, qty in order.items():
            total += self.items[sku]["price"] * qty
            self.remove(sku, qty)
        total = self.discount(total)
        return round(total * 1 + TAX, 2)

    def save(self, path):
        f = open(path, "w")
        f.write(json.dumps(self.items))

def load(path):
    return Inventory(json.load(open(path)))
"""),
    ("Go", """package main

import (
    "encoding/json"
    "net/http"
    "time"
)

var sessions = map[string]time.Time{}

type loginReq struct {
    User string `json:"user"`
    Pass string `json:"pass"`
}

func login(w http.ResponseWriter, r *http.Request) {
    var req loginReq
    json.NewDecoder(r.Body).Decode(&req)
    if req.Pass == lookupPassword(req.User) {
        token := req.User + time.Now().String()
        sessions[token] = time.Now()
        w.Write([]byte(token))
        return
    }
    w.WriteHeader(401)
}

func expire() {
    for {
        for tok, t := range sessions {
            if time.Since(t) > time.Hour {
                delete(sessions, tok)
            }
        }
    }
}

func slowReport(w http.ResponseWriter, r *http.Request) {
    done := make(chan string)
    go func() { done <- buildReport() }()
    select {
    case rep := <-done:
        w.Write([]byte(rep))
    case <-time.After(2 * time.Second):
        w.WriteHeader(504)
    }
}

func main() {
    go expire()
    http.HandleFunc("/login", login)
    http.HandleFunc("/report", slowReport)
    http.ListenAndServe(":8080", nil)
}
"""),
    ("TypeScript", """type Listener = (payload: unknown) => void;

class EventBus {
  private listeners: Record<string, Listener[]> = {};

  on(event: string, fn: Listener) {
    (this.listeners[event] ||= []).push(fn);
  }

  off(event: string, fn: Listener) {
    const list = this.listeners[event];
    if (!list) return;
    list.splice(list.indexOf(fn), 1);
  }

  emit(event: string, payload: unknown) {
    for (const fn of this.listeners[event] ?? []) fn(payload);
  }
}

class PriceWidget {
  private total = 0;
  constructor(private bus: EventBus) {
    bus.on("price", this.update);
  }
  update(p: unknown) {
    this.total += p as number;
    document.getElementById("total")!.textContent = this.total.toFixed(2);
  }
  destroy() {
    this.bus.off("price", (p) => this.update(p));
  }
}

export async function loadPrices(bus: EventBus, ids: string[]) {
  ids.forEach(async (id) => {
    const res = await fetch("/api/price/" + id);
    bus.emit("price", (await res.json()).value);
  });
  bus.emit("done", null);
}
"""),
    ("Java", """public class TransferService {
    private final Map<String, Account> accounts = new HashMap<>();

    public void transfer(String from, String to, double amount) {
        Account a = accounts.get(from);
        Account b = accounts.get(to);
        synchronized (a) {
            synchronized (b) {
                if (a.balance >= amount) {
                    a.balance -= amount;
                    b.balance += amount;
                }
            }
        }
        audit(from, to, amount);
    }

    private void audit(String from, String to, double amount) {
        try {
            Connection c = DriverManager.getConnection(URL);
            Statement st = c.createStatement();
            st.execute("INSERT INTO audit VALUES ('" + from + "','" + to + "'," + amount + ")");
        } catch (SQLException e) {
            e.printStackTrace();
        }
    }

    public double total() {
        double sum = 0;
        for (Account acc : accounts.values()) sum += acc.balance;
        return sum;
    }
}
"""),
    ("Rust", """use std::collections::HashMap;
use std::fs;

fn top_words(path: &str, n: usize) -> Vec<(String, usize)> {
    let text = fs::read_to_string(path).unwrap();
    let mut counts: HashMap<String, usize> = HashMap::new();
    for word in text.split(' ') {
        let w = word.trim_matches(|c: char| !c.is_alphanumeric());
        *counts.entry(w.to_string()).or_insert(0) += 1;
    }
    let mut v: Vec<(String, usize)> = counts.into_iter().collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v.truncate(n);
    v
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args[2].parse().unwrap();
    for (w, c) in top_words(&args[1], n) {
        println!("{w}: {c}");
    }
}
"""),
]


def g_code_review_long(rng):
    lang, code = ch(rng, LONG_PROGRAMS)
    block = fmt_code(rng, lang, code.rstrip())
    q = ch(rng, [
        f"Review this {lang} code. Find every bug, security problem and performance issue, explain each one, and then give a corrected version.\n\n{block}",
        f"{block}\n\nThis is going to production next week. What will break? Please give a prioritised list of problems with explanations and a fixed version of the code.",
        f"Here is a module from our codebase:\n\n{block}\n\nWrite a thorough code review as if on a pull request: correctness, concurrency, error handling, security, design. Then propose a refactored version with tests.",
        f"Can you find the bugs in this?\n\n{block}",
    ])
    return q, "code_review"


CTX_INSTR = {
    "minutes": [
        ("Turn these minutes into a full project plan: a dependency-ordered task list with owners, a timeline that respects every deadline mentioned, the main risks, and a RACI matrix.", "long_context_planning"),
        ("Identify every decision, open question and risk in these notes, then draft a 600-word status report for senior leadership with recommendations and the reasoning behind them.", "document_analysis"),
        ("Analyse these minutes: which commitments conflict with each other or look unrealistic, and why? Propose a revised plan and explain the trade-offs.", "document_analysis"),
    ],
    "newsletter": [
        ("Using these announcements, write a 1,000-word feature article for the local paper that connects the items into one story about the neighbourhood, with a headline, standfirst and sections.", "long_context_writing"),
        ("Rank these initiatives by likely community impact per unit of cost. State your assumptions explicitly, estimate the numbers where they are missing, and justify the ranking.", "document_analysis"),
    ],
    "diary": [
        ("Based on this travel diary, plan an improved version of the trip with a day-by-day itinerary, a budget 20% lower, and a justification for each change.", "long_context_planning"),
        ("Write a 1,200-word travel essay from these notes with a narrative arc, vivid description, and practical advice boxes, keeping all facts consistent with the diary.", "long_context_writing"),
    ],
    "thread": [
        ("Reconstruct the timeline of commitments in these emails, identify any conflicts between them, and propose a schedule that resolves every conflict. Explain your reasoning step by step.", "long_context_planning"),
        ("Analyse this email thread: what does each person need, where are the misunderstandings, and what single reply would resolve the most issues? Draft that reply and explain your choices.", "document_analysis"),
    ],
    "review": [
        ("Write a product-improvement strategy based on this review: find the root cause of each complaint, prioritise fixes by impact and effort in a table, and draft a plan for customer support.", "document_analysis"),
        ("Write a detailed, balanced 800-word critique of this review itself: which claims are specific and credible, which are vague, and what a business should and shouldn't take from it.", "document_analysis"),
    ],
    "article": [
        ("Write a 1,500-word essay that expands on this text, adding historical context, two counterarguments and a conclusion with open questions.", "long_context_writing"),
        ("Design a week-long lesson sequence for 12-year-olds based on this text, with objectives, activities, differentiation and an assessment rubric.", "lesson_plan"),
        ("Critically evaluate the claims in this text: which are well supported, which are oversimplified, and what evidence would settle them? Reason step by step.", "document_analysis"),
        ("Create ten exam questions of increasing difficulty from this material, with model answers and a marking scheme that explains how partial credit is awarded.", "long_context_writing"),
    ],
}


def g_context_complex(rng):
    kind = ch(rng, ["minutes", "newsletter", "diary", "thread", "review", "article"])
    if rng.random() < 0.55:
        target = rng.randint(120, 520)
        doc = {"minutes": long_minutes, "newsletter": long_newsletter, "diary": long_diary, "thread": long_thread,
               "review": long_review, "article": long_topics}[kind](rng, target)
    else:
        f = {"minutes": passage_meeting, "newsletter": passage_council, "diary": passage_travel, "thread": passage_email,
             "review": None, "article": topic_passage}[kind]
        doc = make_review(rng)[0] if f is None else f(rng)[0]
    instr, cat = ch(rng, CTX_INSTR[kind])
    return frame(rng, instr, doc), cat


def g_data_table_long(rng):
    channels = ["organic", "paid search", "email", "social", "referral"]
    n = rng.randint(14, 24)
    start = rng.randint(1, 8)
    month = ch(rng, MONTHS)
    lines = ["date,channel,visits,signups,revenue"]
    for i in range(n):
        v = rng.randint(300, 5000)
        s_ = int(v * rng.uniform(0.01, 0.09))
        lines.append(f"{month[:3]} {start + i},{ch(rng, channels)},{v},{s_},{s_ * rng.randint(8, 60)}")
    csv = "\n".join(lines)
    q = ch(rng, [
        f"{csv}\n\nAnalyse this traffic data: conversion rate and revenue per visit by channel, day-over-day trends, and any anomalies. Show your calculations, then recommend how to reallocate a fixed marketing budget and explain why.",
        f"Here is {n} days of data:\n\n{csv}\n\nWhich channel is most efficient, and is the difference large enough to act on? Compute the relevant metrics, discuss variance and sample size, and write a one-page summary for the CEO.",
    ])
    return q, "data_analysis"



SHORT_ALGOS = ["Dijkstra's algorithm", "an LRU cache", "a trie", "quicksort", "a hash map with open addressing", "a min-heap", "union-find",
               "a token-bucket rate limiter", "a B-tree", "A* search", "a ring buffer", "a JSON parser", "merge sort", "a thread pool",
               "a skip list", "KMP string search", "a Bloom filter", "a red-black tree", "topological sort", "a regex engine",
               "an interval tree", "a segment tree", "Huffman coding", "a consistent hash ring", "a priority queue", "a sudoku solver"]
SHORT_PROOFS = ["sqrt(5) is irrational", "there are infinitely many primes", "n^3 - n is divisible by 6", "the sum of two even numbers is even",
                "every tree has a leaf", "2^n > n for all n", "log2(3) is irrational", "1 + 2 + ... + n = n(n+1)/2",
                "the product of two odd numbers is odd", "a^2 + b^2 >= 2ab", "there is no smallest positive rational",
                "a triangle has at most one obtuse angle", "the empty set is a subset of every set", "every prime above 2 is odd",
                "the sum of angles in a quadrilateral is 360 degrees", "an injective function from a finite set to itself is surjective"]
DEEP_TOPICS = ["how TLS establishes a secure connection", "how Raft reaches consensus", "how a garbage collector decides what to free",
               "how transformers compute attention", "how public-key signatures work", "how a CPU pipeline handles branch mispredictions",
               "why the Fourier transform of a Gaussian is a Gaussian", "how database indexes use B-trees", "how MVCC works in PostgreSQL",
               "how gradient descent converges on convex functions", "why quicksort is O(n log n) on average", "how DNS resolution works end to end"]
INTEGRALS = ["x^2 e^x", "x ln x", "e^x sin x", "1/(x^2 + 4x + 5)", "sec^3 x", "x/(x^2 - 1)", "sqrt(1 - x^2)", "x^3 cos x", "ln(x)^2", "1/(x(x+1)(x+2))"]
SHORT_PROBS = ["rolling at least one six in four rolls", "getting exactly two heads in five flips", "two people in a room of 30 sharing a birthday",
               "drawing two aces from a shuffled deck", "a random chord being longer than the radius", "a poker hand being a full house",
               "three dice all showing different numbers", "a random permutation of 10 items having no fixed point"]


def g_short_complex2(rng):
    k = rng.randrange(12)
    lang = ch(rng, LANGS)
    if k == 0:
        return ch(rng, [f"Prove that {ch(rng, SHORT_PROOFS)}.", f"Can you prove that {ch(rng, SHORT_PROOFS)}?", f"Proof that {ch(rng, SHORT_PROOFS)}?",
                        f"Why is it true that {ch(rng, SHORT_PROOFS)}? Prove it."]), "proof"
    if k in (1, 2):
        a = ch(rng, SHORT_ALGOS)
        return ch(rng, [f"Implement {a} in {lang}.", f"How would you implement {a} in {lang}?", f"Write {a} in {lang} from scratch.",
                        f"Can you code {a} in {lang} with tests?", f"{lang} {a} implementation, please.", f"Implement {a} in {lang} and analyse its complexity."]), "code_implementation"
    if k == 3:
        return ch(rng, [f"Design {ch(rng, SYSTEMS)}.", f"How would you architect {ch(rng, SYSTEMS)}?", f"What's the best way to design {ch(rng, SYSTEMS)} at scale?"]), "system_design"
    if k == 4:
        return ch(rng, [f"Explain {ch(rng, DEEP_TOPICS)}, step by step.", f"Can you explain in depth {ch(rng, DEEP_TOPICS)}?",
                        f"Walk me through {ch(rng, DEEP_TOPICS)} in detail."]), "science_explanation"
    if k == 5:
        return ch(rng, [f"Integrate {ch(rng, INTEGRALS)} dx.", f"What is the integral of {ch(rng, INTEGRALS)}? Show the steps.",
                        f"Evaluate the integral of {ch(rng, INTEGRALS)} with respect to x."]), "derivation"
    if k == 6:
        return ch(rng, [f"What's the probability of {ch(rng, SHORT_PROBS)}? Show your working.", f"Compute the probability of {ch(rng, SHORT_PROBS)}.",
                        f"How likely is {ch(rng, SHORT_PROBS)}? Derive it."]), "combinatorics_probability"
    if k == 7:
        a, b, ctx = ch(rng, COMPARE_PAIRS)
        return ch(rng, [f"{a} or {b} for {ctx}? Analyse the trade-offs.", f"Should we use {a} or {b}? Give a detailed comparison.",
                        f"Compare {a} with {b} in depth."]), "comparison_analysis"
    if k == 8:
        w = ch(rng, [1000, 1500, 2000, 3000])
        return ch(rng, [f"Write {art(w)} {w}-word essay on {ch(rng, ESSAY_TOPICS)}.", f"Essay, {w} words: {ch(rng, ESSAY_TOPICS)}.",
                        f"Can you write a long essay about {ch(rng, ESSAY_TOPICS)}?"]), "essay"
    if k == 9:
        city, _ = ch(rng, CITIES)
        nd = rng.randint(4, 14)
        return ch(rng, [f"Plan {art(nd)} {nd}-day trip to {city} for under ${rng.randint(8, 40) * 100}, day by day.",
                        f"Make me a detailed {rng.randint(3, 12)}-week plan to learn {ch(rng, ['Rust', 'Spanish', 'statistics', 'guitar', 'SQL', 'calculus'])}.",
                        f"Write a business plan for {ch(rng, BUSINESS_IDEAS)}."]), "planning_short"
    if k == 10:
        a, b, c = rng.randint(1, 9), rng.randint(1, 9), rng.randint(10, 60)
        return ch(rng, [f"Solve the system {a}x + {b}y = {c}, {b}x - {a}y = {a + b}, and check the answer.",
                        f"Find all integer solutions of x^2 - {a}y^2 = 1 with y < {c}, and explain the method.",
                        f"How many positive divisors does {a * b * c * 12} have, and what is their sum?",
                        f"Find the smallest n such that {a + 1}^n > {c * 1000}, without a calculator."]), "multi_step_math"
    return ch(rng, ["Why does my Go program deadlock when I close a channel twice? Explain and fix.", "My Rust code says 'borrowed value does not live long enough'. What's going on?",
                    "Find the race condition in a double-checked locking singleton in Java.", "Why does my Python asyncio program never finish?",
                    "My SQL query is slow on 50M rows. How do I diagnose and fix it?", "Why does this recursion overflow the stack and how do I make it iterative?",
                    f"My {lang} service leaks memory under load. How do I find the leak?", "Explain why my React component renders twice and how to fix it."]), "code_debug"


# ---------------------------------------------------------------------------
# style augmentation (applied identically to both labels)
# ---------------------------------------------------------------------------

PREFIXES = [
    "Please answer:", "Quick question:", "Hey,", "Hi!", "Can you help?", "Hello.", "Question:", "I need some help with this.",
    "Help me out here:", "Task:", "hey -", "Okay so", "Good morning!", "For work:", "Sorry to bother you,", "Hi, hope you're well.",
    "Hey there!", "Could you help me with something?", "One more:", "Next one:", "Another one for you:", "hi", "Hello, assistant.",
    "So,", "My manager asked me this:", "Here's what I need:",
]
SUFFIXES = [
    "Thanks!", "Thank you.", "I need this for work.", "Thanks in advance.", "Cheers", "Appreciate it!", "ty", "Much appreciated.",
    "This is for my class.", "thx", "Please and thank you.", "Let me know if anything is unclear.", "It's for a project I'm doing.",
    "Thanks a lot!!", "Thank you so much", "Any help is welcome.",
]
P_PREFIX, P_SUFFIX, P_LOWER, P_UPPER, P_STRIP, P_SPLIT = 0.16, 0.13, 0.14, 0.03, 0.22, 0.2


def _map_outside_code(text, fn):
    parts = text.split("```")
    return "```".join(fn(p) if i % 2 == 0 else p for i, p in enumerate(parts))


def stylize(rng: Random, text: str) -> str:
    if rng.random() < P_PREFIX:
        pre = ch(rng, PREFIXES)
        sep = "\n\n" if ("\n" in text and rng.random() < 0.5) else " "
        if pre.endswith(",") and sep == " " and text[:1].isupper() and text[1:2].islower():
            text = text[0].lower() + text[1:]
        text = pre + sep + text
    if rng.random() < P_SUFFIX:
        suf = ch(rng, SUFFIXES)
        sep = "\n\n" if "\n" in text else " "
        text = text + sep + suf
    if "\n" not in text and rng.random() < P_SPLIT:
        cut = text.find(". ")
        if 0 < cut < len(text) - 3:
            text = text[:cut + 1] + ch(rng, ["\n", "\n\n"]) + text[cut + 2:]
    r = rng.random()
    if r < P_LOWER:
        text = _map_outside_code(text, str.lower)
    elif r < P_LOWER + P_UPPER and len(text) < 300 and "```" not in text and "\n" not in text:
        text = text.upper()
    if rng.random() < P_STRIP and text[-1:] in ".?!" and not text.endswith("...") and "\n" not in text[-40:]:
        text = text.rstrip(".?!")
    return text.strip()


# ---------------------------------------------------------------------------
# registry and main
# ---------------------------------------------------------------------------

SIMPLE_GENS = [
    ("summarize", g_summarize, 80), ("extract", g_extract, 100), ("sentiment", g_sentiment, 90),
    ("classify", g_classify, 80), ("grammar_fix", g_grammar, 70), ("translate", g_translate, 70),
    ("rewrite", g_rewrite, 70), ("bullet_points", g_bullets, 40), ("headline", g_headline, 40),
    ("keywords", g_keywords, 30), ("yes_no_question", g_yesno, 40), ("closed_qa", g_passage_qa, 45),
    ("format_conversion", g_json, 40), ("short_reply", g_reply, 45), ("factual_qa", g_factual, 120),
    ("definition", g_definition, 45), ("synonym_antonym", g_synonym, 35), ("spelling_grammar", g_spelling, 30),
    ("unit_conversion", g_units, 45), ("simple_arithmetic", g_arith, 55), ("one_step_word_problem", g_one_step, 30),
    ("list_ops", g_listops, 35), ("chit_chat", g_chitchat, 60), ("everyday_howto", g_howto, 30),
    ("short_creative", g_short_creative, 40), ("code_lookup", g_code_lookup, 35), ("long_simple", g_long_simple, 115),
]
COMPLEX_GENS = [
    ("proof", g_proof, 120), ("derivation", g_derivation, 60), ("logic_puzzle", g_logic, 130),
    ("combinatorics_probability", g_combinatorics, 70), ("multi_step_math", g_multistep_math, 50),
    ("code_implementation", g_code_impl, 125), ("code_debug", g_code_debug, 70), ("code_refactor", g_code_refactor, 30),
    ("code_tests", g_code_tests, 35), ("concurrency", g_concurrency, 35), ("complexity_analysis", g_complexity, 22),
    ("sql_query", g_sql, 30), ("system_design", g_system_design, 60), ("essay", g_essay, 55), ("longform", g_longform, 90),
    ("comparison_analysis", g_compare, 60), ("planning", g_planning, 80), ("data_analysis", g_data_analysis, 50),
    ("decision_analysis", g_decision, 35), ("science_explanation", g_science, 50), ("short_complex", g_short_complex, 55),
    ("code_review", g_code_review_long, 15), ("short_complex2", g_short_complex2, 120), ("context_complex", g_context_complex, 75), ("data_table_long", g_data_table_long, 25),
]


def sub_rng(name: str, salt: str) -> Random:
    digest = hashlib.sha256(f"{SEED}:{salt}:{name}".encode()).hexdigest()
    return Random(int(digest[:16], 16))


def load_train_keys():
    for path in TRAIN_CANDIDATES:
        if path and os.path.exists(path):
            keys = set()
            with open(path, encoding="utf-8") as fh:
                for line in fh:
                    line = line.strip()
                    if line:
                        keys.add(norm(json.loads(line)["text"]))
            return path, keys
    return None, set()


def generate(train_keys):
    rows = []
    seen_core, seen_final = set(), set()
    shortfalls = []
    dropped_train = 0
    for label, gens in (("simple", SIMPLE_GENS), ("complex", COMPLEX_GENS)):
        for name, fn, target in gens:
            grng, srng = sub_rng(name, "gen"), sub_rng(name, "style")
            got, attempts = 0, 0
            while got < target and attempts < target * 60:
                attempts += 1
                out = fn(grng)
                if not out:
                    continue
                core, cat = out
                core = core.replace("\r\n", "\n").replace("a.m..", "a.m.").replace("p.m..", "p.m.").strip()
                k = norm(core)
                if not core or k in seen_core or len(core) > MAX_CHARS:
                    continue
                text = stylize(srng, core)
                fk = norm(text)
                if len(text) > MAX_CHARS or fk in seen_final:
                    continue
                if k in train_keys or fk in train_keys:
                    dropped_train += 1
                    continue
                seen_core.add(k)
                seen_final.add(fk)
                rows.append({"text": text, "label": label, "source": SOURCE, "category": cat})
                got += 1
            if got < target:
                shortfalls.append((name, got, target))
    return rows, shortfalls, dropped_train


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--markdown", action="store_true", help="print the per-category table as markdown")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    train_path, train_keys = load_train_keys()
    rows, shortfalls, dropped_train = generate(train_keys)
    rows.sort(key=lambda r: (r["label"], r["category"], r["text"]))
    Random(SEED).shuffle(rows)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    payload = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")
    with open(args.out, "wb") as fh:
        fh.write(payload)
    elapsed = time.perf_counter() - t0

    by_label = Counter(r["label"] for r in rows)
    by_cat = Counter((r["category"], r["label"]) for r in rows)
    print(f"wrote {len(rows)} rows to {args.out} in {elapsed:.2f}s")
    print(f"sha256 {hashlib.sha256(payload).hexdigest()}")
    print(f"labels: simple={by_label['simple']} complex={by_label['complex']}")
    print(f"train file used for dedupe: {train_path or 'NOT FOUND (dedupe against train skipped)'}; rows dropped as train duplicates: {dropped_train}")
    for name, got, target in shortfalls:
        print(f"warning: generator {name} produced {got} of {target} unique rows", file=sys.stderr)
    for label in ("simple", "complex"):
        lens = sorted(len(r["text"]) for r in rows if r["label"] == label)
        print(f"{label}: median {lens[len(lens) // 2]} chars, min {lens[0]}, max {lens[-1]}")
    if args.markdown:
        print("\n| category | simple | complex |\n|---|---:|---:|")
        cats = sorted({c for c, _ in by_cat})
        for c in sorted(cats, key=lambda c: (-(by_cat[(c, 'simple')] > 0), c)):
            s, x = by_cat[(c, "simple")], by_cat[(c, "complex")]
            print(f"| `{c}` | {s or ''} | {x or ''} |")
        print(f"| **total** | **{by_label['simple']}** | **{by_label['complex']}** |")
    else:
        for (c, lab), n in sorted(by_cat.items(), key=lambda kv: (kv[0][1], kv[0][0])):
            print(f"  {lab:8s} {c:28s} {n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
