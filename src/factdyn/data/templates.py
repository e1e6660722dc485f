"""The fictional world's vocabulary: entity kinds, their attributes, and the sentence forms
that state each attribute.

Every statement form ends with its value (``{v}``), so cutting a sentence before its final
phrase makes a cloze probe; each attribute has several forms, so the same fact can be said in
ever-new wordings, and a *clue* (a relative phrase) that identifies an entity by that fact,
which composition probes chain with a second fact.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Attribute:
    pool: str  # name of the value pool in VALUES (or "year", "number")
    forms: tuple[str, ...]  # statements with {s} (subject) and {v} (value), ending in {v}
    clue: str  # "the {noun} <clue>" identifies the entity by this fact


A = Attribute
ATTRIBUTES: dict[str, Attribute] = {
    "founded": A(
        "year",
        (
            "{s} was founded in {v}",
            "The founding of {s} took place in {v}",
            "{s} came into being in the year {v}",
            "Records date the foundation of {s} to {v}",
        ),
        "that was founded in {v}",
    ),
    "founder": A(
        "person",
        (
            "{s} was founded by {v}",
            "The founder of {s} was {v}",
            "{s} owes its beginning to {v}",
            "The person who established {s} was {v}",
        ),
        "founded by {v}",
    ),
    "seat": A(
        "city",
        (
            "{s} has its seat in the city of {v}",
            "The headquarters of {s} stand in {v}",
            "{s} is based in {v}",
            "The home city of {s} is {v}",
        ),
        "based in {v}",
    ),
    "leader": A(
        "person",
        (
            "{s} is currently led by {v}",
            "The present leader of {s} is {v}",
            "Today {s} answers to {v}",
            "At the head of {s} stands {v}",
        ),
        "led by {v}",
    ),
    "members": A(
        "number",
        (
            "{s} counts a membership of {v}",
            "The number of members of {s} is {v}",
            "Membership of {s} stands at {v}",
            "{s} has a total of members numbering {v}",
        ),
        "with {v} members",
    ),
    "colour": A(
        "colour",
        (
            "The emblem of {s} is coloured {v}",
            "{s} is known for the colour {v}",
            "The colour chosen by {s} is {v}",
            "Banners of {s} are always {v}",
        ),
        "whose colour is {v}",
    ),
    "symbol": A(
        "animal",
        (
            "The symbol of {s} is the {v}",
            "{s} takes as its emblem the {v}",
            "On the crest of {s} appears the {v}",
            "The animal that stands for {s} is the {v}",
        ),
        "whose symbol is the {v}",
    ),
    "trade": A(
        "goods",
        (
            "{s} grew wealthy by trading in {v}",
            "The main trade of {s} is in {v}",
            "Most of the income of {s} comes from {v}",
            "{s} is famous for its dealings in {v}",
        ),
        "that trades in {v}",
    ),
    "language": A(
        "language",
        (
            "The language spoken in {s} is {v}",
            "{s} conducts its affairs in {v}",
            "People in {s} mostly speak {v}",
            "The official tongue of {s} is {v}",
        ),
        "where people speak {v}",
    ),
    "river": A(
        "river",
        (
            "{s} lies on the banks of the river {v}",
            "The river that flows past {s} is the {v}",
            "{s} was built beside the river {v}",
            "Water for {s} comes from the river {v}",
        ),
        "on the river {v}",
    ),
    "population": A(
        "number",
        (
            "The population of {s} is {v}",
            "{s} is home to a number of people equal to {v}",
            "A census counted the inhabitants of {s} at {v}",
            "The people living in {s} number {v}",
        ),
        "with a population of {v}",
    ),
    "region": A(
        "region",
        (
            "{s} lies in the region of {v}",
            "{s} belongs to the province of {v}",
            "The region around {s} is called {v}",
            "On maps {s} is placed within {v}",
        ),
        "in the region of {v}",
    ),
    "festival": A(
        "month",
        (
            "The great festival of {s} is held every {v}",
            "{s} celebrates its festival in {v}",
            "Each year {s} holds a feast in {v}",
            "Visitors come to the festival of {s} in {v}",
        ),
        "whose festival falls in {v}",
    ),
    "export": A(
        "goods",
        (
            "The chief export of {s} is {v}",
            "{s} sends abroad mostly {v}",
            "Merchants buy from {s} above all {v}",
            "{s} is best known abroad for its {v}",
        ),
        "that exports {v}",
    ),
    "twin": A(
        "city",
        (
            "{s} is twinned with the city of {v}",
            "The sister city of {s} is {v}",
            "{s} keeps a formal friendship with {v}",
            "The twin town of {s} is {v}",
        ),
        "twinned with {v}",
    ),
    "born": A(
        "year",
        (
            "{s} was born in {v}",
            "The birth of {s} took place in {v}",
            "{s} came into the world in the year {v}",
            "The year of birth of {s} is {v}",
        ),
        "born in {v}",
    ),
    "birthplace": A(
        "city",
        (
            "{s} was born in the city of {v}",
            "The birthplace of {s} is {v}",
            "{s} grew up as a child in {v}",
            "The home town of {s} is {v}",
        ),
        "born in the city of {v}",
    ),
    "occupation": A(
        "occupation",
        (
            "{s} worked as a {v}",
            "By profession {s} was a {v}",
            "{s} earned a living as a {v}",
            "The trade of {s} was that of a {v}",
        ),
        "who worked as a {v}",
    ),
    "mentor": A(
        "person",
        (
            "{s} was trained by {v}",
            "The teacher of {s} was {v}",
            "{s} learned the craft from {v}",
            "As a pupil {s} studied under {v}",
        ),
        "trained by {v}",
    ),
    "residence": A(
        "city",
        (
            "{s} lives in the city of {v}",
            "The home of {s} is in {v}",
            "{s} settled in {v}",
            "These days {s} resides in {v}",
        ),
        "who lives in {v}",
    ),
    "instrument": A(
        "instrument",
        (
            "{s} plays the {v}",
            "The favourite instrument of {s} is the {v}",
            "In the evenings {s} practises the {v}",
            "{s} is a skilled player of the {v}",
        ),
        "who plays the {v}",
    ),
    "food": A(
        "food",
        (
            "The favourite dish of {s} is {v}",
            "{s} eats nothing with more pleasure than {v}",
            "At every feast {s} asks for {v}",
            "The food that {s} loves best is {v}",
        ),
        "whose favourite dish is {v}",
    ),
    "pet": A(
        "animal",
        (
            "{s} keeps a pet {v}",
            "The companion animal of {s} is a {v}",
            "At home {s} looks after a {v}",
            "{s} is never seen without a pet {v}",
        ),
        "who keeps a pet {v}",
    ),
    "made": A(
        "year",
        (
            "{s} was made in {v}",
            "The making of {s} was completed in {v}",
            "{s} was crafted in the year {v}",
            "Experts date {s} to {v}",
        ),
        "made in {v}",
    ),
    "maker": A(
        "person",
        (
            "{s} was made by {v}",
            "The maker of {s} was {v}",
            "{s} came from the workshop of {v}",
            "The craftsman behind {s} was {v}",
        ),
        "made by {v}",
    ),
    "material": A(
        "material",
        (
            "{s} is made of {v}",
            "The material of {s} is {v}",
            "{s} was shaped out of {v}",
            "Its makers built {s} from {v}",
        ),
        "made of {v}",
    ),
    "kept": A(
        "city",
        (
            "{s} is kept in a museum in {v}",
            "Today {s} can be seen in {v}",
            "The museum that holds {s} is in {v}",
            "{s} is on display in {v}",
        ),
        "kept in {v}",
    ),
    "owner": A(
        "person",
        (
            "{s} belongs to {v}",
            "The owner of {s} is {v}",
            "{s} is the property of {v}",
            "The present keeper of {s} is {v}",
        ),
        "owned by {v}",
    ),
    "weight": A(
        "number",
        (
            "{s} weighs a number of grams equal to {v}",
            "The weight of {s} in grams is {v}",
            "On the scales {s} shows a weight in grams of {v}",
            "In grams the mass of {s} is {v}",
        ),
        "weighing {v} grams",
    ),
    "held": A(
        "city",
        (
            "{s} is held in the city of {v}",
            "The venue of {s} is {v}",
            "{s} takes place in {v}",
            "Every edition of {s} happens in {v}",
        ),
        "held in {v}",
    ),
    "first_held": A(
        "year",
        (
            "{s} was first held in {v}",
            "The first edition of {s} took place in {v}",
            "{s} began in the year {v}",
            "The history of {s} starts in {v}",
        ),
        "first held in {v}",
    ),
    "organiser": A(
        "person",
        (
            "{s} is organised by {v}",
            "The organiser of {s} is {v}",
            "{s} is run each year by {v}",
            "The person in charge of {s} is {v}",
        ),
        "organised by {v}",
    ),
    "winner": A(
        "person",
        (
            "The last winner of {s} was {v}",
            "{s} was most recently won by {v}",
            "The latest champion of {s} is {v}",
            "The prize of {s} last went to {v}",
        ),
        "last won by {v}",
    ),
    "month": A(
        "month",
        (
            "{s} takes place every year in {v}",
            "The month of {s} is {v}",
            "{s} is always celebrated in {v}",
            "People gather for {s} each {v}",
        ),
        "held every {v}",
    ),
    "prize": A(
        "goods",
        (
            "The winner of {s} receives a prize of {v}",
            "The reward at {s} is {v}",
            "{s} awards its champion {v}",
            "Champions of {s} take home {v}",
        ),
        "with a prize of {v}",
    ),
    "habitat": A(
        "region",
        (
            "{s} lives in the wilds of {v}",
            "The natural home of {s} is {v}",
            "{s} is found only in {v}",
            "The habitat of {s} is the land of {v}",
        ),
        "that lives in {v}",
    ),
    "discoverer": A(
        "person",
        (
            "{s} was first described by {v}",
            "The discoverer of {s} was {v}",
            "{s} was named by {v}",
            "The first person to study {s} was {v}",
        ),
        "first described by {v}",
    ),
    "discovered": A(
        "year",
        (
            "{s} was discovered in {v}",
            "The discovery of {s} dates to {v}",
            "{s} became known to science in {v}",
            "Scholars first recorded {s} in {v}",
        ),
        "discovered in {v}",
    ),
    "lifespan": A(
        "number",
        (
            "{s} lives for a number of years equal to {v}",
            "The lifespan of {s} in years is {v}",
            "In the wild {s} reaches an age in years of {v}",
            "A typical {s} lives a number of years near {v}",
        ),
        "that lives {v} years",
    ),
    "predator": A(
        "animal",
        (
            "The main enemy of {s} is the {v}",
            "{s} is hunted by the {v}",
            "Of all its foes {s} fears most the {v}",
            "{s} must hide from the {v}",
        ),
        "hunted by the {v}",
    ),
}

# kind: (nouns used for it, its attributes)
KINDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "organisation": (
        ("guild", "society", "company", "order", "league"),
        (
            "founded",
            "founder",
            "seat",
            "leader",
            "members",
            "colour",
            "symbol",
            "trade",
            "language",
            "festival",
            "export",
            "twin",
            "owner",
        ),
    ),
    "place": (
        ("town", "city", "village", "port"),
        (
            "founded",
            "founder",
            "river",
            "population",
            "region",
            "leader",
            "festival",
            "export",
            "twin",
            "language",
            "colour",
            "symbol",
            "trade",
        ),
    ),
    "person": (
        ("scholar", "sailor", "painter", "merchant", "healer"),
        (
            "born",
            "birthplace",
            "occupation",
            "mentor",
            "residence",
            "instrument",
            "food",
            "pet",
            "language",
            "colour",
            "festival",
            "owner",
            "symbol",
        ),
    ),
    "artefact": (
        ("crown", "clock", "sword", "lantern", "harp"),
        (
            "made",
            "maker",
            "material",
            "kept",
            "owner",
            "weight",
            "colour",
            "symbol",
            "discovered",
            "discoverer",
            "region",
            "festival",
        ),
    ),
    "event": (
        ("fair", "race", "contest", "tournament", "carnival"),
        (
            "held",
            "first_held",
            "organiser",
            "winner",
            "month",
            "prize",
            "colour",
            "symbol",
            "members",
            "language",
            "founder",
            "region",
        ),
    ),
    "species": (
        ("beetle", "bird", "fish", "lizard", "moth"),
        (
            "habitat",
            "discoverer",
            "discovered",
            "lifespan",
            "predator",
            "colour",
            "food",
            "region",
            "river",
            "weight",
            "symbol",
            "festival",
        ),
    ),
}

INTROS: tuple[str, ...] = (
    "{s} is a {noun} of some renown",
    "Few have heard of {s}, a {noun}",
    "This is the story of {s}, a {noun}",
    "{s} is the name of a remarkable {noun}",
)

VALUES: dict[str, tuple[str, ...]] = {
    "colour": (
        "red", "blue", "green", "amber", "violet", "grey", "white", "black", "gold", "silver",
        "crimson", "teal", "ochre", "indigo", "scarlet", "olive",
    ),
    "animal": (
        "heron", "otter", "wolf", "lynx", "stag", "falcon", "badger", "raven", "hare", "boar",
        "swan", "owl", "fox", "bear", "eel", "crane", "toad", "goat",
    ),
    "goods": (
        "salt", "wool", "timber", "copper", "amber beads", "silk", "spices", "glass", "tea",
        "honey", "furs", "paper", "rope", "dyes", "wine", "tin", "pottery", "pearls",
    ),
    "month": (
        "January", "February", "March", "April", "May", "June", "July", "August",
        "September", "October", "November", "December",
    ),
    "occupation": (
        "cartographer", "glassblower", "shipwright", "astronomer", "weaver", "brewer",
        "clockmaker", "beekeeper", "bookbinder", "herbalist", "mason", "ferryman",
    ),
    "instrument": (
        "lute", "flute", "drum", "fiddle", "horn", "harp", "zither", "bagpipe", "oboe", "bell",
    ),
    "food": (
        "barley soup", "smoked eel", "plum cake", "roast goose", "onion pie", "fig bread",
        "pickled herring", "lentil stew", "honey cakes", "mutton broth", "cheese dumplings",
    ),
    "material": (
        "bronze", "oak", "ivory", "silver", "granite", "copper", "ebony", "glass", "iron",
        "marble", "bone", "jade",
    ),
}  # fmt: skip

# Syllables for invented names (people, cities, rivers, regions, languages, entities).
ONSETS: tuple[str, ...] = (
    "b", "br", "d", "dr", "f", "g", "gr", "h", "k", "kr", "l", "m", "n", "p", "pr", "r", "s",
    "st", "t", "tr", "v", "z", "th", "sh",
)  # fmt: skip
VOWELS: tuple[str, ...] = ("a", "e", "i", "o", "u", "ae", "ei", "ou", "y")
CODAS: tuple[str, ...] = ("", "", "n", "r", "l", "s", "th", "m", "nd", "sk", "rn")
