"""Small made-up essays and a four-trait rubric for the offline grader's tests (no real data)."""

from __future__ import annotations

SENTENCES = (
    "The storm rolled over the hills just before dinner.",
    "My little brother pressed his face against the cold window.",
    "We had waited three weeks for the new puppy to arrive.",
    "Grandmother said that good things come to people who wait quietly.",
    "Every morning I checked the calendar and crossed off another day.",
    "At school the hours dragged while the clock ticked above the board.",
    "Finally, on a grey Saturday, a blue truck stopped outside our house.",
    "The driver lifted a trembling bundle of fur from a wooden crate.",
    "Because we had been patient, the puppy trusted us almost at once.",
    "However, it hid under the table for most of the first evening.",
    "My brother lay on the carpet and whispered its new name over and over.",
    "Later that night the puppy crept out and fell asleep on his slipper.",
    "I learned that waiting is easier when you have someone to share it with.",
    "Although the weeks felt endless, the ending was worth every minute.",
    "Now the dog greets us at the door as if we had been gone for years.",
    "Whenever I feel impatient, I remember that grey Saturday morning.",
)

FOUR_TRAITS = {
    "criteria": [
        {
            "key": key,
            "name": name,
            "points": 3,
            "levels": [
                {"points": points, "label": f"Level {points}", "descriptor": f"{name} at level {points}."}
                for points in (3, 2, 1, 0)
            ],
        }
        for key, name in (
            ("ideas", "Ideas"),
            ("organization", "Organization"),
            ("style", "Style"),
            ("conventions", "Conventions"),
        )
    ]
}


def story(sentences: int, offset: int = 0) -> str:
    """A story of the given number of distinct sentences, starting at `offset` in the pool."""
    count = len(SENTENCES)
    return " ".join(SENTENCES[(offset + i) % count] for i in range(sentences))
