"""A labelled retrieval set for semantic search: needles (3 logged calls each, worded
differently) hidden among generated everyday calls, and one query per needle that says the
same thing in other words — no content word of the query appears in its needle's calls.

Used by tests/semantic/test_quality.py (a small slice, in CI, on the real model) and by
benchmarks/bench_semantic.py (all of it, over thousands of entries).
"""

from __future__ import annotations

import random
import re

# (query, [three user messages that mean it], the assistant's answer)
NEEDLES: list[tuple[str, list[str], str]] = [
    ("customer wants their money back",
     ["I'd like a refund for my order", "Please reimburse the amount I paid last week",
      "Can I return this and get my payment returned?"],
     "I'm sorry to hear that. Refunds are issued within 5 business days to the original card."),
    ("cannot sign in to my account",
     ["The login page keeps rejecting my password", "I'm locked out after three failed attempts",
      "It says invalid credentials every time I try to log on"],
     "Let's reset your password: use the 'forgot password' link on the login screen."),
    ("parcel never showed up",
     ["My package hasn't arrived and tracking stopped updating", "The delivery is two weeks late",
      "Where is my shipment? The courier says delivered but nothing came"],
     "I've opened an investigation with the carrier and will send a replacement."),
    ("how do I cancel my plan",
     ["Please end my subscription at the end of this month",
      "I want to stop being billed every month", "Terminate my membership, I don't use it anymore"],
     "Your subscription is cancelled; you keep access until the billing period ends."),
    ("charged twice for the same purchase",
     ["I see a duplicate transaction on my card statement",
      "The payment went through two times", "My bank shows a double debit for one order"],
     "I see the duplicate authorisation; the second charge will be reversed."),
    ("program crashes when it starts",
     ["The app closes immediately after launching", "Segmentation fault on startup",
      "As soon as I open the application it quits with no message"],
     "Please send the crash log from ~/Library/Logs so we can see the failing module."),
    ("make the script run faster",
     ["How can I speed up this Python loop?", "My code is too slow, it takes ten minutes",
      "Optimise this function, performance is terrible"],
     "Vectorise the loop with numpy and avoid appending to lists inside it."),
    ("render this text in the language of Mexico",
     ["How do you say 'good morning' en español?", "Put this paragraph in castellano please",
      "What is the Spanish for 'where is the station'?"],
     "'Buenos días' — and 'where is the station' is '¿Dónde está la estación?'"),
    ("ideas for a child's birthday celebration",
     ["My son turns seven, what party games should we play?",
      "Plan a fun kids party for ten 6-year-olds", "Theme suggestions for my daughter's 8th party"],
     "A treasure hunt, a piñata and a pirate theme work well for that age."),
    ("what should I cook tonight with chicken",
     ["Give me a dinner recipe using poultry breast", "Easy weeknight meal with drumsticks",
      "I have thighs in the fridge, suggest something to make"],
     "Try a lemon-garlic traybake: 25 minutes at 200°C with potatoes."),
    ("feeling anxious ahead of a job interview",
     ["I'm nervous about meeting the hiring panel tomorrow",
      "How do I calm my nerves before talking to recruiters?",
      "My hands shake when I think about the recruitment call"],
     "Prepare three stories about your work and practise slow breathing beforehand."),
    ("fix the leaking tap in the kitchen",
     ["The faucet keeps dripping even when closed", "Water drips from the sink spout all night",
      "How do I replace the washer in a dripping mixer?"],
     "Turn off the supply, remove the handle and replace the worn cartridge or washer."),
    ("the database lookup needs ages to finish",
     ["My SQL SELECT is very slow on a big table", "Postgres takes 30 seconds for this join",
      "Why is this report query so sluggish?"],
     "Add an index on the join column and check the plan with EXPLAIN ANALYZE."),
    ("write a poem about the ocean",
     ["Compose verses about waves and the sea", "I need a short rhyme about the tide",
      "A haiku on salt water and seagulls please"],
     "Waves fold the light / gulls stitch the wind / the tide keeps its time."),
    ("my dog won't stop barking at night",
     ["The puppy howls every evening until 2am", "Our terrier yaps whenever it gets dark",
      "How to train a pup to be quiet after bedtime?"],
     "Give more exercise in the evening and reward calm behaviour; avoid responding to the noise."),
    ("best way to learn guitar as a beginner",
     ["I just bought my first six-string, where do I start?",
      "Teach me basic chords for acoustic", "Which songs should a novice strum first?"],
     "Start with G, C, D and Em chords and practise switching for ten minutes a day."),
    ("cut my electricity bill",
     ["How can I reduce how much power my home uses?", "Our energy costs doubled this winter",
      "Tips to save on heating and lighting expenses"],
     "Lower the thermostat by one degree, switch to LED bulbs and insulate the loft."),
    ("symptoms of the flu",
     ["I have a fever, aching muscles and a sore throat", "Chills and a cough since yesterday",
      "Is a high temperature with body aches influenza?"],
     "Those are typical of influenza: rest, fluids, and see a doctor if breathing gets hard."),
    ("update the OS on my computer",
     ["How do I install the newest Windows release?", "My MacBook says a macOS upgrade is available",
      "Upgrading Ubuntu to the next LTS version"],
     "Back up first, then run the updater from System Settings and restart when prompted."),
    ("merge conflict in version control",
     ["Two branches changed the same lines and now I can't combine them",
      "Rebase stopped with 'both modified'", "How do I resolve conflicting edits when pulling?"],
     "Edit the files to keep the right lines, `git add` them, then continue the rebase."),
    ("organise a holiday in Japan",
     ["Two weeks in Tokyo and Kyoto, what itinerary?", "Travelling to Osaka in spring, any tips?",
      "Is a rail pass worth it for touring Hokkaido and Honshu?"],
     "Spend five days in Tokyo, four in Kyoto with a day trip to Nara, and buy the JR pass."),
    ("help me pitch myself to an employer in writing",
     ["Draft an application note for a marketing role", "Introduce me to a hiring manager in one page",
      "I need a motivational letter to go with my CV"],
     "Open with the role and why you fit it, give two achievements, close with availability."),
    ("my little one won't stay asleep till morning",
     ["My infant wakes up every two hours", "Our newborn cries at 3am constantly",
      "How to get a four-month-old to nap longer?"],
     "Keep a consistent bedtime routine and a dark, quiet room; night waking is normal at this age."),
    ("my phone runs out of juice quickly",
     ["The smartphone goes from full to empty by lunch", "Mobile charge lasts only four hours",
      "Why does my cell die so fast lately?"],
     "Check which apps use power in Settings > Battery and turn off background refresh."),
    ("turn the spreadsheet into a visual",
     ["Make a graph from my Excel columns", "Plot these sales figures as bars",
      "Visualise this CSV as a line diagram"],
     "Select the columns, then Insert > Chart and pick a clustered column chart."),
    ("noisy neighbours upstairs",
     ["The people above us stomp and play loud music", "Next-door flat parties every weekend",
      "How do I complain to the landlord about the racket from the flat above?"],
     "Keep a log of dates and times and write to your landlord referencing the quiet-enjoyment clause."),
    ("vegetarian protein sources",
     ["What can I eat to build muscle without meat?", "Plant-based foods high in amino acids",
      "I stopped eating beef, how do I get enough nutrients for training?"],
     "Lentils, tofu, tempeh, chickpeas, Greek yoghurt and eggs are all rich in it."),
    ("explain what inflation is",
     ["Why do prices keep going up every year?", "What does the central bank mean by CPI rising?",
      "Why does money buy less than it used to?"],
     "It's the general rise in prices; central banks raise interest rates to slow it."),
    ("my plants keep dying",
     ["The leaves on my fern turn brown and fall off", "Every houseplant I buy wilts within a month",
      "Why is my basil drooping and yellow?"],
     "Usually overwatering: let the soil dry between waterings and give them more light."),
    ("recommend a science fiction novel",
     ["Suggest a good space opera book", "I loved Dune, what should I read next?",
      "Looking for a story about robots and distant galaxies"],
     "Try 'Hyperion' by Dan Simmons or 'The Left Hand of Darkness' by Ursula K. Le Guin."),
    ("API returns too many requests",
     ["I keep getting HTTP 429 from the endpoint", "The server says I exceeded the rate quota",
      "Throttled by the service after a few calls per second"],
     "Back off exponentially and honour the Retry-After header."),
    ("memory leak in the service",
     ["RAM usage grows until the container is OOM-killed", "The process uses more heap every hour",
      "Our Java app eventually runs out of RAM"],
     "Take two heap dumps an hour apart and compare which objects keep growing."),
    ("how long to boil an egg",
     ["Minutes for a soft yolk?", "Timing for hard-cooked ones in simmering water",
      "When is a runny-centre one done?"],
     "Six minutes for a soft yolk, ten for hard, from the moment the water bubbles."),
    ("ways to stay focused while studying",
     ["I get distracted by my phone when revising", "How to concentrate on homework for hours?",
      "Tips to avoid procrastination before exams"],
     "Use 25-minute Pomodoro blocks and put the phone in another room."),
    ("set up a budget for the household",
     ["Help me track our family spending each month", "How should we split income into savings and bills?",
      "Make a monthly money plan for two adults and a kid"],
     "Try 50/30/20: half on needs, 30% on wants, 20% to savings, tracked in a simple sheet."),
    ("wifi keeps disconnecting",
     ["My wireless drops every few minutes", "The router connection is unstable in the bedroom",
      "Internet cuts out on my laptop but not my phone"],
     "Change the router's channel, update its firmware and move it away from the microwave."),
    ("complaint about rude staff",
     ["The cashier was very impolite to me", "Your support agent hung up on me and was disrespectful",
      "I was treated badly by an employee at the store"],
     "I'm very sorry. I've passed this to the store manager and added a voucher to your account."),
    ("best time to plant tomatoes",
     ["When should I sow tomato seeds outdoors?", "Which month do I put seedlings in the vegetable bed?",
      "Is it too early to transplant my tomato seedlings?"],
     "After the last frost, when nights stay above 10°C — usually mid-May in the UK."),
    ("what's the difference between a list and a tuple",
     ["Python: when to use () versus []?", "Are tuples immutable and lists mutable?",
      "When is the parenthesised kind of sequence better than the bracketed one?"],
     "Lists can change after creation; tuples cannot, so they can be dict keys."),
    ("I lost my passport abroad",
     ["My travel document was stolen in Rome", "Can't find my ID papers while on holiday in Spain",
      "Someone took my bag with all my documents at the airport"],
     "Report it to the local police and contact your embassy for an emergency travel document."),
    ("how to negotiate a higher salary",
     ["Asking my boss for a raise, what do I say?", "The offer is low, how do I counter it?",
      "Getting better pay at my annual review"],
     "Anchor on market data, name a specific figure and talk about the value you bring."),
    ("car makes a squealing noise when braking",
     ["My brakes screech when I stop", "High-pitched squeak from the wheels as I slow down",
      "Grinding sound from the front pads"],
     "Your pads are probably worn to the indicator; have them replaced soon."),
    ("summarise this long meeting transcript",
     ["Give me the key points from these minutes", "TL;DR of the call notes below",
      "Condense the discussion into action items"],
     "Decisions: ship on Friday. Actions: Ana updates the docs, Ben fixes the login bug."),
    ("suggest a name for my startup",
     ["Brainstorm brand names for a coffee delivery company", "What should I call my new bakery?",
      "Catchy title for a fintech app"],
     "How about 'Brewline', 'Crumb & Co' or 'Ledgerly'?"),
    ("eye strain from digital devices",
     ["My vision is blurry after hours at the monitor", "Staring at the computer gives me sore eyes",
      "Dry, tired eyes from working on a laptop all day"],
     "Follow the 20-20-20 rule and lower the screen brightness."),
    ("regular expression to match email addresses",
     ["A regex that validates user@domain.com", "Pattern to extract things like name@site.org",
      "How to check if a string looks like an e-mail?"],
     r"A practical pattern is `^[^@\s]+@[^@\s]+\.[^@\s]+$`."),
    ("my cat is not eating",
     ["Our kitten refuses food since Monday", "The feline ignores her bowl and hides",
      "Tom has had no appetite for two days"],
     "Two days without food is serious for felines — please see a vet today."),
    ("recover deleted files",
     ["I emptied the recycle bin by mistake", "Accidentally erased my thesis folder",
      "Can I get back photos I removed from the SD card?"],
     "Stop writing to the disk and use a recovery tool like PhotoRec or Recuva."),
    ("prepare for a marathon",
     ["Training plan to run 42 km in six months", "How many miles per week before race day?",
      "First long-distance race, what schedule should I follow?"],
     "Build up to about 50 km a week with one long run, and taper for the last two weeks."),
    ("roof is leaking during rain",
     ["Water drips through the ceiling when it pours", "There's a damp patch above the bedroom after storms",
      "Rainwater gets into the attic"],
     "Check for broken tiles and flashing around the chimney; a roofer can patch it."),
    ("unit tests fail only on CI",
     ["Everything passes locally but breaks in the GitHub Actions pipeline", "Jenkins build red, my machine green",
      "Why does pytest succeed on my laptop and not in the build server?"],
     "Usually timezone, locale or ordering: run the suite with the CI environment variables locally."),
    ("good gift for my grandmother",
     ["Present ideas for a 90-year-old lady", "What to buy nana for Christmas?",
      "Something thoughtful for my gran's anniversary"],
     "A photo book of the family, a soft blanket or a tea-tasting set are lovely choices."),
    ("how to remove a red wine stain",
     ["Spilled merlot on the white carpet", "Clean a burgundy mark from my shirt",
      "Get a cabernet splash out of a tablecloth"],
     "Blot, cover with salt or baking soda, then wash with cold water and dish soap."),
    ("our containers weigh far too much",
     ["My Docker build produces a 3 GB artifact", "Shrink the size of the image we push",
      "Why is the Dockerfile output so huge?"],
     "Use a multi-stage build and a slim base image, and clean the apt cache in the same layer."),
    ("difficulty falling asleep",
     ["I lie awake for hours every night", "Insomnia since I started the new job",
      "Can't get to sleep before 3am"],
     "Keep a fixed wake time, avoid screens an hour before bed and cut caffeine after noon."),
    ("split the bill among friends",
     ["Five of us had dinner for 230 euros, what does each owe?", "Divide the restaurant check equally",
      "How much per person if the meal was $180 for six?"],
     "€230 / 5 = €46 each; $180 / 6 = $30 per person."),
]

# Everyday calls that are about none of the needles.
_FILLER_TOPICS: list[tuple[list[str], list[str]]] = [
    (["Explain how {x} works in simple terms", "Give me an overview of {x}",
      "What are the main ideas behind {x}?", "Write a short introduction to {x} for a newsletter"],
     ["photosynthesis", "blockchain ledgers", "the French Revolution", "black holes",
      "the immune system", "supply and demand", "quantum entanglement", "the Roman aqueducts",
      "volcanic eruptions", "neural networks", "the printing press", "ocean currents",
      "plate tectonics", "the Renaissance", "compound interest", "the water cycle"]),
    (["Write a {x} function in Python", "Show me Go code for {x}", "Implement {x} in TypeScript",
      "Review my Rust implementation of {x}"],
     ["binary search", "a linked list", "a LRU cache", "a tokenizer", "a JSON parser",
      "Dijkstra's algorithm", "a rate limiter", "a trie", "merge sort", "a thread pool"]),
    (["Summarise the history of {x}", "List five facts about {x}", "Who were the key figures in {x}?"],
     ["the Olympic Games", "jazz music", "the Silk Road", "aviation", "the Internet",
      "modern architecture", "the space race", "impressionist painting"]),
    (["What's the capital of {x}?", "Describe the climate of {x}", "What language is spoken in {x}?",
      "Population of {x}?"],
     ["Canada", "Kenya", "Portugal", "Vietnam", "Chile", "Norway", "Morocco", "New Zealand",
      "Argentina", "Finland", "Egypt", "Peru"]),
    (["Proofread this sentence: {x}", "Rewrite more formally: {x}", "Make this friendlier: {x}"],
     ["we has finished the report yesterday", "please send me the file asap",
      "the meeting are moved to thursday", "thank you for you're help", "i will be late tomorow"]),
    (["Convert {x}", "How many is {x}?", "Calculate {x}"],
     ["15 miles to kilometres", "350 Fahrenheit to Celsius", "3 cups to millilitres",
      "12% of 850", "the square root of 1764", "2 to the power of 20", "72 hours in minutes"]),
    (["Generate a SQL query that {x}", "Write a shell one-liner that {x}", "Regex question: {x}"],
     ["counts orders per customer", "lists files larger than 100 MB", "finds duplicate rows",
      "renames all .jpeg files to .jpg", "extracts dates from log lines", "joins two CSV files"]),
]

_FILLER_ANSWERS = [
    "Here is a concise explanation with the key points.", "Sure — here's a draft you can adapt.",
    "Of course. Below is a step-by-step answer.", "Here is the code with comments.",
    "Good question; the short answer is below, followed by details.",
]
_MODELS = ["gpt-4o-mini", "claude-sonnet-4-5", "llama-local"]
_PROMPTS = [("assistant", "v1"), ("assistant", "v2"), ("support", "v3"), ("coder", "v1")]


def _padding(rng: random.Random, n_chars: int) -> str:
    """Plausible response body text to bring an entry to about `n_chars`."""
    sentences = [
        "Let me know if you would like more detail on any part of this.",
        "In practice, the right choice depends on your constraints and your timeline.",
        "A good first step is to write down what you already know and what you expect.",
        "Many people find it useful to test a small change first and measure the result.",
        "If anything here is unclear, I can walk through an example.",
        "Keep in mind that the details vary from case to case.",
        "This approach is simple, well understood and easy to adjust later.",
    ]
    out: list[str] = []
    while sum(len(s) + 1 for s in out) < n_chars:
        out.append(rng.choice(sentences))
    return " ".join(out)


def build_log(n_entries: int, *, n_needles: int | None = None, seed: int = 7,
              pad_chars: int = 1300) -> tuple[list[dict], list[tuple[str, set[int]]]]:
    """(entries as logging kwargs, [(query, indices of its relevant entries)]).

    Needle entries are spread at random positions among filler entries; every entry is
    about `pad_chars` + its message long (≈1.5 KB as logged)."""
    rng = random.Random(seed)
    needles = NEEDLES[: n_needles or len(NEEDLES)]
    fillers_needed = max(0, n_entries - 3 * len(needles))
    entries: list[dict] = []
    for _ in range(fillers_needed):
        templates, topics = rng.choice(_FILLER_TOPICS)
        user = rng.choice(templates).format(x=rng.choice(topics))
        answer = rng.choice(_FILLER_ANSWERS) + " " + _padding(rng, pad_chars)
        entries.append({"user_message": user, "assistant_response": answer})
    needle_entries = []
    for query, users, answer in needles:
        for user in users:
            needle_entries.append((query, {"user_message": user,
                                           "assistant_response": answer + " " +
                                           _padding(rng, pad_chars - len(answer))}))
    rng.shuffle(needle_entries)
    slots = sorted(rng.sample(range(len(entries) + len(needle_entries)), len(needle_entries)))
    order: list[dict] = []
    it = iter(entries)
    relevant: dict[str, set[int]] = {q: set() for q, _, _ in needles}
    pending = dict(enumerate(slots))
    slot_to_needle = {slot: needle_entries[i] for i, slot in pending.items()}
    for position in range(len(entries) + len(needle_entries)):
        if position in slot_to_needle:
            query, entry = slot_to_needle[position]
            relevant[query].add(position)
            order.append(entry)
        else:
            order.append(next(it))
    for i, entry in enumerate(order):
        model = _MODELS[i % len(_MODELS)]
        prompt_id, version = _PROMPTS[i % len(_PROMPTS)]
        entry.update({"model": model, "prompt_id": prompt_id, "prompt_version": version,
                      "system_prompt": "You are a helpful assistant. Answer clearly.",
                      "input_tokens": 120 + i % 50, "output_tokens": 300 + i % 70})
    return order, [(q, relevant[q]) for q, _, _ in needles]


def content_words(text: str) -> set[str]:
    stop = {"a", "an", "the", "to", "of", "in", "on", "for", "my", "i", "is", "it", "how",
            "do", "what", "and", "with", "when", "after", "at", "into", "me", "too", "this",
            "best", "way", "keeps", "from", "won't", "not", "stop", "only", "make", "your", "about"}
    return {w for w in re.findall(r"[a-z']+", text.lower()) if w not in stop and len(w) > 2}
