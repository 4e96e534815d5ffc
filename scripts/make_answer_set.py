"""Write benchmarks/answers/samples-en.json: questions about the bundled samples/.

Each question was written by reading the English sample documents; its gold answer is a
short text of the document that answers it. The contexts are the passages the answers
come from (so the file is a complete SQuAD-format set on its own); `snaprag eval --answers
benchmarks/answers/samples-en.json --corpus samples` asks the questions of the real files.
Articles are documents: the first half of the file (by article) is for tuning, the rest
held out.

    python scripts/make_answer_set.py
"""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# (document, context, [(question, gold answer text), ...])
SETS: list[tuple[str, str, list[tuple[str, str]]]] = [
    (
        "warranty-and-service.pdf",
        "Snapdesk Inc. warrants the Snapdesk S2 against defects in materials and workmanship "
        "for the following periods, counted from the date of delivery: - Frame and lifting "
        "motors: 7 years. - Electronics (control box, handset, power supply): 3 years. - "
        "Desktop surface, including edges and laminate: 2 years. The warranty covers the "
        "original purchaser and is not transferable when the desk is sold. Keep your order "
        "confirmation as proof of the delivery date. During the warranty period we repair or "
        "replace the defective part free of charge, including shipping of the part to you. "
        "Find the serial number on the label of the control box under the desktop. It has 9 "
        "characters and starts with SD2, for example SD2481730. We answer every claim within "
        "2 business days. The warranty does not cover: - damage from loads above the rated "
        "120 kg; - parts that were modified, drilled or taken apart by the user; - liquid "
        "damage to the electronics. Out-of-warranty repairs cost a flat service fee of USD 89 plus "
        "parts. Spare parts stay available for at least 7 years after a model is "
        "discontinued. Phone support: +1 555 0142, Monday to Friday, 9:00 to 17:00 Eastern "
        "Time.",
        [
            ("How long is the warranty on the frame?", "7 years"),
            ("How long are the electronics covered?", "3 years"),
            ("How long is the desktop surface under warranty?", "2 years"),
            ("Is the warranty transferable when the desk is sold?", "not transferable"),
            ("Where do I find the serial number?", "label of the control box"),
            ("How fast do you answer a warranty claim?", "2 business days"),
            ("How much does an out-of-warranty repair cost?", "USD 89"),
            ("How long do spare parts stay available?", "at least 7 years"),
            ("What is the phone number for support?", "+1 555 0142"),
            ("What does the warranty not cover?", "liquid damage to the electronics"),
        ],
    ),
    (
        "snapdesk-manual.md",
        "Assembly takes about 30 minutes with two people. Before the first use, and after "
        "any error that will not clear, run a reset: hold the DOWN button for 10 seconds "
        "until you hear a beep. The handset stores four heights. To lock the handset (child "
        "lock): hold M and UP together for 5 seconds. The default schedule is 45 minutes "
        "sitting, then 15 minutes standing. E05 | Anti-collision stop | Clear the obstacle; "
        "the desk moved back 2 cm. E07 | Motor overheating | Let the desk rest for 18 "
        "minutes. Check the 14 desktop screws for tightness every 6 months. Lift capacity: "
        "120 kg, evenly distributed. Height range (floor to top of desktop): 62 cm to 127 "
        "cm.",
        [
            ("How long does assembly take?", "30 minutes"),
            ("How do I reset the desk?", "hold the DOWN button for 10 seconds"),
            ("How many heights can the handset store?", "four heights"),
            ("How do I turn on the child lock?", "hold M and UP together for 5 seconds"),
            ("What is the default sit-stand reminder schedule?", "45 minutes sitting"),
            ("What does error E05 mean?", "Anti-collision stop"),
            ("How long should the desk rest after error E07?", "18 minutes"),
            ("How often should I check the desktop screws?", "every 6 months"),
            ("What is the lift capacity of the desk?", "120 kg"),
            ("What is the height range of the desk?", "62 cm to 127 cm"),
        ],
    ),
    (
        "faq.html",
        "Orders placed before 2 pm ship within 3 business days. Shipping is free for orders "
        "over $300. The Snapdesk S2 ships in two boxes: the frame (29 kg) and the desktop "
        "(up to 24 kg). You can return the desk within 30 days of delivery for a full refund "
        "of the purchase price. A return shipping fee of $49 is deducted from the refund "
        "unless the desk arrived damaged or defective. The app needs Bluetooth Low Energy "
        "and runs on iOS 15 or later and Android 10 or later. One desk can pair with up to "
        "3 phones. An update takes about 4 minutes and the desk cannot move while it runs.",
        [
            ("When will my desk ship?", "within 3 business days"),
            ("How much does shipping cost?", "free for orders over $300"),
            ("How heavy is the frame box?", "29 kg"),
            ("How long do I have to return the desk?", "30 days"),
            ("How much is the return shipping fee?", "$49"),
            ("Which Android versions does the app support?", "Android 10 or later"),
            ("How many phones can pair with one desk?", "3 phones"),
            ("How long does a firmware update take?", "4 minutes"),
        ],
    ),
    (
        "firmware-release-notes.txt",
        "v2.4.1 - 12 March 2024 - Anti-collision is less sensitive on hard floors; false E05 "
        "stops dropped by about 80% in our tests. - Fixed: the child lock could be released "
        "by pressing UP and DOWN together. - The handset display now dims after 60 seconds "
        "without a button press. v2.4.0 - 18 January 2024 - New: child lock. - New: height "
        "can be shown in inches; switch units in the app. The version running on a desk is "
        "shown on the handset display when you hold M for 3 seconds.",
        [
            ("When was firmware v2.4.1 released?", "12 March 2024"),
            ("When does the handset display dim?", "60 seconds"),
            ("Which firmware version added the child lock?", "v2.4.0"),
            ("How do I see the firmware version running on a desk?", "hold M for 3 seconds"),
        ],
    ),
    (
        "office-rollout-plan.docx",
        "Acme Analytics replaces 48 fixed desks with Snapdesk S2 sit-stand desks (140 x 70 "
        "cm, white frame, oak desktop) on floors 3 to 5 of the Riverside office. The old "
        "desks are collected for recycling by GreenCycle on 15 November 2024. Clear your "
        "desk completely by 5 pm on the day before your floor's install date. Facilities "
        "lead: Mina Park, extension 4417.",
        [
            ("How many desks does Acme Analytics replace?", "48"),
            ("Who collects the old desks for recycling?", "GreenCycle"),
            ("By when must I clear my desk before installation?", "5 pm"),
            ("Who is the facilities lead for the rollout?", "Mina Park"),
        ],
    ),
]


def main() -> None:
    data = []
    for doc, context, qas in SETS:
        items = []
        for n, (question, gold) in enumerate(qas):
            start = context.find(gold)
            if start < 0:
                raise SystemExit(f"{doc}: {gold!r} is not in the context")
            answers = [{"text": gold, "answer_start": start}]
            items.append({"id": f"{doc}-{n}", "question": question, "answers": answers})
        data.append({"title": doc, "paragraphs": [{"context": context, "qas": items}]})
    out = ROOT / "benchmarks" / "answers" / "samples-en.json"
    text = json.dumps({"version": "snaprag-samples-1", "data": data}, ensure_ascii=False, indent=1)
    out.write_text(text + "\n", encoding="utf-8")
    print(f"{out}: {sum(len(q) for _, _, q in SETS)} questions")


if __name__ == "__main__":
    main()
