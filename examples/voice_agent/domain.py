"""The agent's domain, written down: the help line of a small online shop.

Three things live here, all plain data:

* ``TRAINING``: example requests per intent. They train the intent classifier at start-up and
  are the corpus of the recogniser's language model.
* ``REPLIES``: the agent's written replies, a few per intent; the one nearest in meaning to what
  the caller said is chosen by sentence-embedding similarity.
* ``TEST_UTTERANCES``: what the synthetic callers of the test set say, with their intents as
  ground truth. None of them is a training sentence, but all their words are in the language
  model's vocabulary (a closed-domain recogniser only knows the words it was built with).
"""

from __future__ import annotations

from typing import NamedTuple

INTENTS: tuple[str, ...] = (
    "track_order",
    "return_item",
    "cancel_order",
    "change_address",
    "human_agent",
    "thanks",
)

TRAINING: dict[str, list[str]] = {
    "track_order": [
        "where is my order",
        "where is my parcel",
        "my package has not arrived yet",
        "when will my order arrive",
        "when will my parcel be delivered",
        "i am still waiting for my delivery",
        "can you track my order please",
        "what is the status of my order",
        "my order is late",
        "the delivery is two weeks late",
        "i ordered a jacket last week and it is not here",
        "has my package been sent yet",
        "i never got my parcel",
        "the tracking number does not work",
        "i ordered it a week ago and it is still not here",
        "can you tell me where my parcel is",
        "my delivery is late again",
    ],
    "return_item": [
        "i want to return these shoes",
        "how do i send back an item",
        "the jacket is too small and i want to return it",
        "can i get a refund for this",
        "i would like my money back",
        "the item arrived broken",
        "the shoes are the wrong size",
        "how do i return a broken item",
        "i want a refund please",
        "i want to send the jacket back",
        "the parcel arrived damaged and i want my money back",
        "can i exchange this for a bigger size",
        "the shoes are bad can i return them",
        "this is terrible the item is broken",
    ],
    "cancel_order": [
        "please cancel my order",
        "i want to cancel my order",
        "i do not want the order anymore",
        "can you stop my order",
        "cancel the jacket i ordered",
        "i changed my mind please cancel it",
        "stop the delivery i do not need it",
        "i ordered the wrong thing please cancel",
        "how do i cancel an order",
        "i would like to cancel the shoes",
        "please do not send my order",
        "cancel everything i ordered today",
    ],
    "change_address": [
        "i need to change my delivery address",
        "can you send my parcel to a different address",
        "i moved to a new house",
        "please update my address",
        "the address on my order is wrong",
        "can i change where my order is delivered",
        "send it to my office instead",
        "i want the package delivered to my work address",
        "my new address is on the account",
        "please deliver to my new home",
        "can you change the address for my order",
        "i gave you the wrong address",
    ],
    "human_agent": [
        "i want to speak to a real person",
        "can i talk to a human",
        "let me speak to someone please",
        "put me through to an agent",
        "i need to talk to a manager",
        "is there a person i can talk to",
        "connect me to customer service",
        "i do not want to talk to a machine",
        "get me a real person now",
        "can someone call me back",
        "transfer me to a human agent",
        "i would like to speak to the manager please",
    ],
    "thanks": [
        "thank you",
        "thanks a lot",
        "thank you so much that was helpful",
        "great thanks for your help",
        "that is all thank you",
        "perfect thank you very much",
        "thanks that was really helpful",
        "you have been very helpful",
        "thank you goodbye",
        "that solved it thanks",
        "wonderful thank you for the help",
        "thanks have a nice day",
    ],
}


class Reply(NamedTuple):
    """A written reply of the agent, for one intent."""

    intent: str
    text: str


REPLIES: tuple[Reply, ...] = (
    Reply("track_order", "Your parcel is on its way and should arrive within two days."),
    Reply("track_order", "I can see the delay on your order. It left our warehouse yesterday, "
                         "and I have asked the courier to prioritise it."),
    Reply("track_order", "I will send you a new tracking number by email in a few minutes."),
    Reply("return_item", "You can return any item within thirty days. I am emailing you a free "
                         "return label now."),
    Reply("return_item", "Damaged goods are on us: I have started a full refund, which reaches "
                         "your account in three to five days."),
    Reply("return_item", "We can exchange it for another size. Send it back with the label I am "
                         "emailing you, and the new size ships the same day."),
    Reply("cancel_order", "Done: your order is cancelled and you will not be charged."),
    Reply("cancel_order", "Your order has already left the warehouse, so I cannot stop it; "
                          "when it arrives you can refuse the parcel and get a full refund."),
    Reply("change_address", "I have updated the delivery address on your order."),
    Reply("change_address", "The courier can deliver to your office instead. Please confirm the "
                            "new address in the link I am sending you."),
    Reply("human_agent", "I am transferring you to one of my colleagues now. Please stay on the "
                         "line."),
    Reply("human_agent", "All our agents are busy; a colleague will call you back within the "
                         "hour."),
    Reply("thanks", "You are welcome. Have a lovely day!"),
    Reply("thanks", "Glad I could help. Goodbye!"),
)

#: Said before the chosen reply when the caller sounds upset (VADER compound score below -0.3).
APOLOGY = "I understand this is frustrating, and I am sorry."


class Utterance(NamedTuple):
    """One line of the synthetic test set: what is said, and what it means."""

    text: str
    intent: str


TEST_UTTERANCES: tuple[Utterance, ...] = (
    Utterance("where is my jacket i ordered it two weeks ago", "track_order"),
    Utterance("my parcel is late again this is really bad", "track_order"),
    Utterance("has my order been sent", "track_order"),
    Utterance("when will the shoes arrive", "track_order"),
    Utterance("i am still waiting for my package", "track_order"),
    Utterance("can you tell me the status of my delivery", "track_order"),
    Utterance("the tracking number for my parcel does not work", "track_order"),
    Utterance("i want my money back for these shoes", "return_item"),
    Utterance("the jacket arrived damaged", "return_item"),
    Utterance("how can i send back the shoes", "return_item"),
    Utterance("these shoes are too small can i exchange them", "return_item"),
    Utterance("i would like a refund for the broken item", "return_item"),
    Utterance("the item is the wrong size and i want to return it", "return_item"),
    Utterance("the parcel arrived broken this is terrible", "return_item"),
    Utterance("i do not need the jacket anymore please cancel it", "cancel_order"),
    Utterance("stop my order please", "cancel_order"),
    Utterance("i want to cancel the shoes i ordered today", "cancel_order"),
    Utterance("can you cancel my delivery", "cancel_order"),
    Utterance("i changed my mind cancel the order", "cancel_order"),
    Utterance("please cancel everything", "cancel_order"),
    Utterance("i ordered the wrong size please cancel my order", "cancel_order"),
    Utterance("i moved please change my address", "change_address"),
    Utterance("send my order to my work address instead", "change_address"),
    Utterance("the delivery address is wrong", "change_address"),
    Utterance("can you deliver the parcel to my office", "change_address"),
    Utterance("please update the address on my account", "change_address"),
    Utterance("i want my package delivered to my new house", "change_address"),
    Utterance("can i change the address for the delivery", "change_address"),
    Utterance("let me talk to a real person", "human_agent"),
    Utterance("i want to speak to a manager now", "human_agent"),
    Utterance("can a human call me back", "human_agent"),
    Utterance("connect me to an agent please", "human_agent"),
    Utterance("please let me talk to a person not a machine", "human_agent"),
    Utterance("is there someone i can speak to", "human_agent"),
    Utterance("transfer me to customer service", "human_agent"),
    Utterance("thank you so much", "thanks"),
    Utterance("great that was very helpful", "thanks"),
    Utterance("thanks for the help goodbye", "thanks"),
    Utterance("perfect thanks a lot", "thanks"),
    Utterance("that is all thanks have a nice day", "thanks"),
    Utterance("wonderful you have been really helpful", "thanks"),
    Utterance("thank you that solved it", "thanks"),
)


def corpus() -> list[str]:
    """Every training sentence, one per line: the language model's corpus."""
    return [sentence for sentences in TRAINING.values() for sentence in sentences]


def vocabulary() -> set[str]:
    """The words the recogniser can hear."""
    return {word for sentence in corpus() for word in sentence.split()}
