"""A synthetic FAQ of any size, for the scale benchmark (generated on the fly, never committed).

Entries are a fictional appliance maker's help centre: questions filled in from
templates and word lists (product x task x object x situation), answers of two or
three sentences from the same slots. Everything comes from one seeded random
generator, so the same ``n`` and ``seed`` give the same corpus on every machine.

Each entry also gets a *paraphrase*: the same request worded by another template
("Orion router: how to reset the password"), the kind of query a user types.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

PRODUCTS = [
    "Orion router", "Vega kettle", "Lyra dishwasher", "Atlas washing machine", "Nova thermostat",
    "Pulsar smart speaker", "Helix vacuum cleaner", "Quasar air purifier", "Cosmo coffee grinder",
    "Zenith dryer", "Aurora desk lamp", "Comet electric toothbrush", "Meteor hair dryer",
    "Nimbus humidifier", "Polaris security camera", "Sirius doorbell", "Titan power drill",
    "Echo baby monitor", "Falcon e-bike", "Juno sewing machine", "Kepler microwave", "Luna night light",
    "Mercury blender", "Neptune water filter", "Onyx gaming mouse", "Phoenix space heater",
    "Quartz wall clock", "Rigel tablet", "Saturn soundbar", "Terra garden pump", "Umbra projector",
    "Vesta oven", "Wren fitness tracker", "Xenon car charger", "Yara rice cooker", "Zephyr ceiling fan",
    "Argo lawn mower", "Boreal freezer", "Cygnus printer", "Draco smart lock", "Elara slow cooker",
    "Fornax toaster", "Gemini headphones", "Hydra pressure washer", "Ion electric scooter",
    "Jove solar panel", "Kite drone", "Lumen smart bulb", "Mira robot mop", "Nox dehumidifier",
    "Orbit treadmill", "Pyxis baby scale", "Rhea juicer", "Sol water heater", "Tycho weather station",
    "Ursa chest freezer", "Vela steam iron", "Wega turntable", "Xylo keyboard", "Zora wine cooler",
]
TASKS = [
    "reset", "clean", "update", "replace", "calibrate", "pair", "descale", "register", "repair", "install",
    "remove", "adjust", "lock", "unlock", "charge", "store", "recycle", "test", "disable", "enable",
    "back up", "restore", "connect", "disconnect", "mount", "unmount", "tighten", "lubricate", "sharpen",
    "drain", "refill", "reprogram", "label", "inspect", "rename", "share", "schedule", "silence", "dim",
    "sanitize",
]
OBJECTS = [
    "the filter", "the battery", "the power cord", "the firmware", "the water tank", "the display",
    "the remote control", "the mounting bracket", "the child lock", "the timer", "the Wi-Fi settings",
    "the password", "the warranty", "the door seal", "the fan blades", "the heating element",
    "the control panel", "the rubber feet", "the drip tray", "the charging dock", "the blade assembly",
    "the sensor", "the spare parts", "the user profile", "the app account", "the notification sounds",
    "the LED ring", "the carbon brushes", "the drain hose", "the lint screen", "the temperature probe",
    "the lid hinge", "the air intake", "the memory card", "the speaker grille", "the wheel bearings",
    "the fuse", "the handle", "the cable clips", "the storage bag", "the cleaning brush", "the nozzle",
    "the thermostat dial", "the reset button", "the serial number", "the energy saver mode",
    "the night mode", "the factory settings", "the guest access", "the voice prompts",
]
SITUATIONS = [
    "after a power cut", "while travelling abroad", "during the winter", "in a small apartment",
    "without the app", "with wet hands", "after moving house", "when the warranty has expired",
    "if I lost the manual", "on a boat", "in a rental flat", "with a second user", "overnight",
    "in a dusty workshop", "near the sea", "in direct sunlight", "with a generator", "on a camping trip",
    "after a firmware update", "when it is still warm", "in a bathroom", "with children around",
    "on an uneven floor", "in a cold garage", "without any tools", "on a slow internet connection",
    "with hard water", "after a spill", "at high altitude", "before selling it",
]
SYMPTOMS = [
    "beep three times", "blink red", "smell of burning", "make a grinding noise", "turn off by itself",
    "show error E4", "vibrate loudly", "leak water", "run hot", "lose its settings", "drop the connection",
    "refuse to start", "charge slowly", "show a blank screen", "restart every hour", "click repeatedly",
]
ATTRIBUTES = [
    "maximum load", "power consumption", "noise level", "weight", "operating temperature range",
    "battery life", "warranty period", "water capacity", "standby power", "cable length",
    "replacement interval", "spare part number", "safety rating", "charging time", "screen size",
]
MENUS = ["Settings", "Maintenance", "Advanced", "Service", "Device", "Care", "Network", "Accessories"]
DURATIONS = ["10 seconds", "30 seconds", "one minute", "five minutes", "two hours", "a full day"]
TIPS = [
    "Unplug the appliance first.", "Keep the receipt: the support team may ask for it.",
    "Wear gloves if the parts are sharp.", "Let it cool down completely before you start.",
    "Use only original spare parts.", "Check the status light afterwards.",
    "The app keeps a log of every change.", "Our support line is open on weekdays.",
    "Do not use abrasive cleaners.", "Write down your settings before you begin.",
]

# (question template, paraphrase template): the paraphrase is how a user might type the same thing.
TEMPLATES = [
    ("How do I {task} {obj} on the {product}?", "{product}: how to {task} {obj_bare}"),
    ("Can I {task} {obj} of the {product} {situation}?", "is it ok to {task} the {product} {obj_bare} {situation}"),
    ("What should I do before I {task} {obj} of the {product}?", "steps before I {task} {obj_bare} {product}"),
    ("Why does my {product} {symptom} when I {task} {obj}?",
     "{product} {symptom} after I tried to {task} {obj_bare}"),
    ("What is the {attribute} of the {product} {situation}?", "{product} {attribute} {situation}"),
]


@dataclass(frozen=True)
class SynthEntry:
    id: str
    question: str
    answer: str
    paraphrase: str


def generate(n: int, seed: int = 7) -> list[SynthEntry]:
    """``n`` distinct entries (questions differ after lowercasing and dropping punctuation)."""
    rng = random.Random(seed)
    seen: set[str] = set()
    out: list[SynthEntry] = []
    while len(out) < n:
        q_tpl, p_tpl = TEMPLATES[rng.randrange(len(TEMPLATES))]
        obj = rng.choice(OBJECTS)
        slots = {
            "product": rng.choice(PRODUCTS), "task": rng.choice(TASKS), "obj": obj,
            "obj_bare": obj.removeprefix("the "), "situation": rng.choice(SITUATIONS),
            "symptom": rng.choice(SYMPTOMS), "attribute": rng.choice(ATTRIBUTES),
        }
        question = q_tpl.format(**slots)
        key = " ".join("".join(c if c.isalnum() else " " for c in question.lower()).split())
        if key in seen:
            continue
        seen.add(key)
        out.append(SynthEntry(f"e{len(out):06d}", question, _answer(rng, q_tpl, slots), p_tpl.format(**slots)))
    return out


def _answer(rng: random.Random, template: str, slots: dict) -> str:
    """Two or three sentences that fit the question's template and slots."""
    product, task, obj = slots["product"], slots["task"], slots["obj"]
    where = f"{rng.choice(MENUS)} > {slots['obj_bare'].title()}"
    if template.startswith("Why does"):
        first = (f"If your {product} starts to {slots['symptom']} when you {task} {obj}, switch it off, "
                 f"wait {rng.choice(DURATIONS)} and check {obj} for damage.")
    elif template.startswith("What is the"):
        first = (f"The {slots['attribute']} of the {product} is listed on the rating plate and under "
                 f"{rng.choice(MENUS)} > About; it does not change {slots['situation']}.")
    elif template.startswith("Can I"):
        first = (f"Yes, you can {task} {obj} {slots['situation']}: open {where} and follow the steps "
                 f"on the screen.")
    else:
        first = (f"To {task} {obj} of the {product}, open {where} and follow the steps on the screen; "
                 f"it takes about {rng.choice(DURATIONS)}.")
    answer = f"{first} {rng.choice(TIPS)}"
    if rng.random() < 0.5:
        answer += f" Model numbers {rng.randint(100, 999)} and later do this automatically."
    return answer


def write_jsonl(entries: list[SynthEntry], path: Path) -> Path:
    """The entries as a JSONL FAQ file (the fastest format :func:`qa.corpus.load_faq` reads)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        for e in entries:
            fh.write(json.dumps({"id": e.id, "question": e.question, "answer": e.answer}, ensure_ascii=False) + "\n")
    return path
