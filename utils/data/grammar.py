"""The offline corpus: English -> French pairs generated from the project's own small grammar.

Every sentence is one of three kinds (statement, negation, yes/no question)
built on one of three predicates:

- a transitive verb and its object: "She sees the small cat." / "Elle voit le petit chat.";
- *to be* + an adjective that agrees with the subject: "The cars are red." / "Les voitures
  sont rouges.";
- an English *to be* idiom that French says with *avoir*: "I am hungry." / "J'ai faim.".

What it exercises, as real translation data does: gender and number agreement
(le/la/les, un/une/des, petit/petite/petits/petites), verb conjugation by
person and number, adjectives before the noun in English but mostly after it
in French (petit, grand, jeune, joli stay before it), elision (j'ai, l'enfant,
n'est, qu'il, d'orange), negation (ne … pas, with un/une/des becoming de),
possessives that agree with the thing owned (his car = sa voiture), questions
with "est-ce que", and some genuine ambiguity: English "you" is French "tu" or
"vous", "they" is "ils" or "elles", and "I am tired" is "fatigué" or "fatiguée".

``generate_corpus(..., max_clauses=k)`` joins 1 to k such clauses (statements and
negations) with "and"/"et" or ", but"/", mais", for sentences long enough to strain a
fixed-size context (up to about 30 tokens for k = 3); the default is one clause.

The text is raw like the real corpus (capitals, punctuation attached in
English, a space before "?" in French), so both go through ``normalize``.
The vocabulary is small: about 160 English and 320 French tokens after ``tokenize``
(elided forms like "j'ai" and "n'est" are tokens of their own).
"""

from __future__ import annotations

import random
from typing import NamedTuple

from utils.validate import require_int

PERSON_KINDS = ("person", "animal", "thing", "food")


class _Noun(NamedTuple):
    en_singular: str
    en_plural: str
    fr_singular: str
    fr_plural: str
    feminine: bool
    kind: str  # one of PERSON_KINDS


class _Adjective(NamedTuple):
    en: str
    fr: tuple[str, str, str, str]  # masculine singular, feminine singular, masculine plural, feminine plural
    before_noun: bool  # its place in French (in English every adjective comes first)
    kinds: frozenset[str]  # the nouns it makes sense with
    attributive: bool = True  # False: only after "to be" ("she is ready", not "the ready girl")


class _Verb(NamedTuple):
    en_base: str
    en_third: str  # he/she/it form
    fr: tuple[str, str, str, str, str, str]  # je, tu, il/elle, nous, vous, ils/elles
    subject_kinds: frozenset[str]
    object_kinds: frozenset[str]
    definite_only: bool  # "j'aime le chat", but not "j'aime un chat" as a plain statement


def _nouns(kind: str, rows: str) -> list[_Noun]:
    """Rows "en_sg en_pl fr_sg fr_pl m|f" separated by commas."""
    nouns = []
    for row in rows.split(","):
        en_sg, en_pl, fr_sg, fr_pl, gender = row.split()
        nouns.append(_Noun(en_sg, en_pl, fr_sg, fr_pl, gender == "f", kind))
    return nouns


NOUNS = (
    _nouns("person", """boy boys garçon garçons m, girl girls fille filles f, man men homme hommes m,
        woman women femme femmes f, child children enfant enfants m,
        teacher teachers professeur professeurs m, doctor doctors médecin médecins m,
        brother brothers frère frères m, sister sisters sœur sœurs f,
        mother mothers mère mères f, father fathers père pères m""")
    + _nouns("animal", """cat cats chat chats m, dog dogs chien chiens m,
        bird birds oiseau oiseaux m, horse horses cheval chevaux m, cow cows vache vaches f,
        mouse mice souris souris f, rabbit rabbits lapin lapins m""")
    + _nouns("thing", """book books livre livres m, car cars voiture voitures f,
        house houses maison maisons f, table tables table tables f, chair chairs chaise chaises f,
        door doors porte portes f, key keys clé clés f, letter letters lettre lettres f,
        bag bags sac sacs m, phone phones téléphone téléphones m, hat hats chapeau chapeaux m,
        ball balls ballon ballons m, window windows fenêtre fenêtres f, bike bikes vélo vélos m,
        shirt shirts chemise chemises f, umbrella umbrellas parapluie parapluies m,
        newspaper newspapers journal journaux m""")
    + _nouns("food", """apple apples pomme pommes f, cake cakes gâteau gâteaux m,
        orange oranges orange oranges f, egg eggs œuf œufs m, banana bananas banane bananes f,
        tomato tomatoes tomate tomates f, carrot carrots carotte carottes f,
        strawberry strawberries fraise fraises f, cookie cookies biscuit biscuits m""")
)

_LIVING = frozenset({"person", "animal"})
_OBJECTS = frozenset({"thing", "food"})
_ANY = frozenset(PERSON_KINDS)


def _adjective(en: str, masculine: str, before_noun: bool, kinds: frozenset[str],
               attributive: bool = True, **irregular) -> _Adjective:
    """Regular forms: +e for the feminine (unless it already ends in e), +s for the plural."""
    feminine = irregular.get("f", masculine if masculine.endswith("e") else masculine + "e")
    masculine_plural = irregular.get("mp", masculine if masculine.endswith(("s", "x")) else masculine + "s")
    forms = (masculine, feminine, masculine_plural, feminine + "s")
    return _Adjective(en, forms, before_noun, kinds, attributive)


ADJECTIVES = (
    # not for people: "grand" before a person means "tall" or "great", and "grande mère" and
    # "petite fille" read as grand-mère and petite-fille (grandmother, granddaughter)
    _adjective("small", "petit", True, _ANY - {"person"}),
    _adjective("big", "grand", True, _ANY - {"person"}),
    _adjective("young", "jeune", True, _LIVING),
    _adjective("pretty", "joli", True, _ANY),
    _adjective("black", "noir", False, frozenset({"animal", "thing"})),
    _adjective("white", "blanc", False, frozenset({"animal", "thing"}), f="blanche"),
    _adjective("red", "rouge", False, _OBJECTS),
    _adjective("green", "vert", False, _OBJECTS),
    _adjective("blue", "bleu", False, frozenset({"thing"})),
    _adjective("expensive", "cher", False, _OBJECTS, f="chère"),
    _adjective("delicious", "délicieux", False, frozenset({"food"}), f="délicieuse"),
    _adjective("fast", "rapide", False, frozenset({"animal", "thing"})),
    _adjective("happy", "heureux", False, _LIVING, f="heureuse"),
    _adjective("sad", "triste", False, _LIVING),
    _adjective("tired", "fatigué", False, _LIVING),
    _adjective("kind", "gentil", False, _LIVING, f="gentille"),
    _adjective("smart", "intelligent", False, _LIVING),
    _adjective("sick", "malade", False, _LIVING),
    _adjective("ready", "prêt", False, frozenset({"person"}), attributive=False),
)


def _er_verb(stem: str) -> tuple[str, ...]:
    """Present tense of a regular -er verb: regard -> regarde, regardes, …, regardent."""
    return tuple(stem + ending for ending in ("e", "es", "e", "ons", "ez", "ent"))


def _verb(en: str, fr, subjects, objects, definite_only=False) -> _Verb:
    base, _, rest = en.partition(" ")  # "look for" -> "looks for"
    if base == "have":
        third = "has"
    else:
        third = base + ("es" if base.endswith(("ch", "sh", "s", "x")) else "s")
    return _Verb(en, f"{third} {rest}".strip(), tuple(fr), frozenset(subjects), frozenset(objects), definite_only)


VERBS = (
    _verb("see", "vois vois voit voyons voyez voient".split(), _LIVING, _ANY),
    _verb("watch", _er_verb("regard"), {"person"}, _ANY),
    _verb("like", _er_verb("aim"), _LIVING, _ANY, definite_only=True),
    _verb("eat", "mange manges mange mangeons mangez mangent".split(), _LIVING, {"food"}),
    _verb("buy", "achète achètes achète achetons achetez achètent".split(), {"person"}, _OBJECTS),
    _verb("want", "veux veux veut voulons voulez veulent".split(), _LIVING, _OBJECTS),
    _verb("have", "ai as a avons avez ont".split(), {"person"}, _OBJECTS | {"animal"}),
    _verb("find", _er_verb("trouv"), _LIVING, _OBJECTS | {"animal"}),
    _verb("look for", _er_verb("cherch"), _LIVING, _ANY),
    _verb("hear", "entends entends entend entendons entendez entendent".split(), _LIVING, _LIVING),
    _verb("help", _er_verb("aid"), {"person"}, {"person"}),
    _verb("know", "connais connais connaît connaissons connaissez connaissent".split(), {"person"}, {"person"}),
    _verb("take", "prends prends prend prenons prenez prennent".split(), {"person"}, _OBJECTS),
    _verb("draw", _er_verb("dessin"), {"person"}, _ANY),
)

BE = ("suis", "es", "est", "sommes", "êtes", "sont")
HAVE = VERBS[6].fr
# English "to be" + adjective where French says "avoir" + noun
AVOIR_IDIOMS = (("hungry", "faim"), ("thirsty", "soif"), ("cold", "froid"), ("hot", "chaud"),
                ("afraid", "peur"), ("sleepy", "sommeil"))

# English subject pronouns: (English, [(French, person index 0-5, feminine or None)])
# person index: 0 je, 1 tu, 2 il/elle, 3 nous, 4 vous, 5 ils/elles; None = either gender
PRONOUNS = (
    ("i", (("je", 0, None),)),
    ("you", (("tu", 1, None), ("vous", 4, None))),
    ("he", (("il", 2, False),)),
    ("she", (("elle", 2, True),)),
    ("we", (("nous", 3, None),)),
    ("they", (("ils", 5, False), ("elles", 5, True))),
)

# possessives: English -> French (masculine singular, feminine singular, plural)
POSSESSIVES = (("my", ("mon", "ma", "mes")), ("his", ("son", "sa", "ses")),
               ("her", ("son", "sa", "ses")), ("our", ("notre", "notre", "nos")),
               ("their", ("leur", "leur", "leurs")))

# "ma femme", "ma fille", "mon homme" mean my wife, my daughter, my husband
_NO_POSSESSIVE = frozenset({"man", "woman", "girl"})

_FRENCH_VOWELS = tuple("aeiouyhéèêàâîôûœ")  # our h-words (homme, heureux) all elide
_ELIDING = {"je": "j'", "ne": "n'", "le": "l'", "la": "l'", "que": "qu'", "de": "d'"}


def _join_french(words: list[str]) -> str:
    """Join French words, eliding je/ne/le/la/que/de before a vowel: "que il" -> "qu'il"."""
    out: list[str] = []
    pending = ""  # an elided clitic waiting to be glued to the next word
    for index, word in enumerate(words):
        if word in _ELIDING and index + 1 < len(words) and words[index + 1].startswith(_FRENCH_VOWELS):
            pending = _ELIDING[word]
            continue
        out.append(pending + word)
        pending = ""
    return " ".join(out)


def _sentence_case(text: str, end: str) -> str:
    return text[:1].upper() + text[1:] + end


class _NounPhrase(NamedTuple):
    en: list[str]
    fr: list[str]
    feminine: bool
    plural: bool


def _noun_phrase(rng: random.Random, kinds: frozenset[str], *, subject: bool, definite_only: bool,
                 negated_object: bool) -> _NounPhrase:
    """A determiner, maybe an adjective, and a noun of one of ``kinds``, in both languages."""
    noun = rng.choice(_NOUNS_BY_KINDS[kinds])
    plural = rng.random() < 0.4
    adjective = None
    if rng.random() < (0.2 if subject else 0.3):
        adjective = rng.choice(_ATTRIBUTIVE_BY_KIND[noun.kind])
    gender_number = 2 * plural + noun.feminine  # index into the 4 adjective forms

    en_noun, fr_noun = (noun.en_plural, noun.fr_plural) if plural else (noun.en_singular, noun.fr_singular)
    en_words = [adjective.en, en_noun] if adjective else [en_noun]
    if adjective is None:
        fr_words = [fr_noun]
    elif adjective.before_noun:
        fr_words = [adjective.fr[gender_number], fr_noun]
    else:
        fr_words = [fr_noun, adjective.fr[gender_number]]

    roll = rng.random()
    possessive_ok = noun.en_singular not in _NO_POSSESSIVE
    if possessive_ok and (roll < 0.2 or (roll < 0.5 and (subject or definite_only))):
        en_det, fr_forms = rng.choice(POSSESSIVES)
        # "ma orange" is "mon orange": the masculine form before a vowel
        feminine_form = noun.feminine and not fr_words[0].startswith(_FRENCH_VOWELS)
        fr_det = fr_forms[2] if plural else fr_forms[1] if feminine_form else fr_forms[0]
    elif roll < 0.5 or subject or definite_only:  # definite (or a possessive we cannot use)
        en_det = "the"
        fr_det = "les" if plural else "la" if noun.feminine else "le"
    else:  # indefinite
        en_det = "" if plural else "an" if en_words[0].startswith(tuple("aeiou")) else "a"
        if negated_object:
            fr_det = "de"  # "je n'ai pas de chat", "pas de pommes"
        elif plural:
            fr_det = "de" if adjective and adjective.before_noun else "des"  # "de petits chats"
        else:
            fr_det = "une" if noun.feminine else "un"
    return _NounPhrase(([en_det] if en_det else []) + en_words, [fr_det] + fr_words, noun.feminine, plural)


_NOUNS_BY_KINDS: dict[frozenset[str], list[_Noun]] = {}
for _verb_or_any in [*(v.subject_kinds for v in VERBS), *(v.object_kinds for v in VERBS), _ANY, _LIVING]:
    _NOUNS_BY_KINDS[_verb_or_any] = [noun for noun in NOUNS if noun.kind in _verb_or_any]
_ADJECTIVES_BY_KIND = {kind: [a for a in ADJECTIVES if kind in a.kinds] for kind in PERSON_KINDS}
_ATTRIBUTIVE_BY_KIND = {kind: [a for a in adjectives if a.attributive]
                        for kind, adjectives in _ADJECTIVES_BY_KIND.items()}


def _subject(rng: random.Random, kinds: frozenset[str]):
    """(English words, French words, person index 0-5, feminine) of a pronoun or noun subject."""
    if rng.random() < 0.55:
        en, choices = rng.choice(PRONOUNS)
        fr, person, feminine = rng.choice(choices)
        if feminine is None:  # "je suis fatigué" or "fatiguée": English does not say
            feminine = rng.random() < 0.5
        return [en], [fr], person, feminine
    phrase = _noun_phrase(rng, kinds, subject=True, definite_only=True, negated_object=False)
    return phrase.en, phrase.fr, 5 if phrase.plural else 2, phrase.feminine


def _english_be(person: int) -> str:
    return "am" if person == 0 else "is" if person == 2 else "are"


def _clause(rng: random.Random, *, questions: bool = True) -> tuple[list[str], list[str], bool]:
    """(English words, French words, is a question) of one clause; ``questions=False``: never a question."""
    kind = rng.random()  # statement, negation or question
    negated, question = kind < 0.25, questions and 0.25 <= kind < 0.5
    predicate = rng.random()

    if predicate < 0.6:  # transitive verb
        verb = rng.choice(VERBS)
        en_subject, fr_subject, person, _ = _subject(rng, verb.subject_kinds)
        obj = _noun_phrase(rng, verb.object_kinds, subject=False, definite_only=verb.definite_only,
                           negated_object=negated)
        fr_verb = verb.fr[person]
        if question:
            en = ["does" if person == 2 else "do", *en_subject, verb.en_base, *obj.en]
        elif negated:
            en = [*en_subject, "does" if person == 2 else "do", "not", verb.en_base, *obj.en]
        else:
            en = [*en_subject, verb.en_third if person == 2 else verb.en_base, *obj.en]
        fr_rest = obj.fr
    else:  # "to be" + adjective, or an avoir idiom; pronouns stand for people here
        idiom = predicate >= 0.85
        en_subject, fr_subject, person, feminine = _subject(rng, _LIVING if idiom else _ANY)
        if idiom:
            en_word, fr_noun = rng.choice(AVOIR_IDIOMS)
            fr_verb, fr_rest = HAVE[person], [fr_noun]
        else:
            noun_kind = _subject_kind(fr_subject)
            adjective = rng.choice(_ADJECTIVES_BY_KIND[noun_kind])
            plural = person >= 3
            en_word = adjective.en
            fr_verb, fr_rest = BE[person], [adjective.fr[2 * plural + feminine]]
        be = _english_be(person)
        if question:
            en = [be, *en_subject, en_word]
        elif negated:
            en = [*en_subject, be, "not", en_word]
        else:
            en = [*en_subject, be, en_word]

    if negated:
        fr = [*fr_subject, "ne", fr_verb, "pas", *fr_rest]
    else:
        fr = [*fr_subject, fr_verb, *fr_rest]
    if question:
        fr = ["est-ce", "que", *fr]
    return en, fr, question


def _english(words: list[str]) -> str:
    return " ".join("I" if word == "i" else word for word in words)


def _pair(rng: random.Random) -> tuple[str, str]:
    """One single-clause pair: a statement, a negation or a question."""
    en, fr, question = _clause(rng)
    return _sentence_case(_english(en), "?" if question else "."), _sentence_case(_join_french(fr), " ?" if question else ".")


# (English, French, comma before it in both languages): "I am tired, but she eats." /
# "Je suis fatigué, mais elle mange." and "I am tired and she eats." / "Je suis fatigué et elle mange."
_CONNECTORS = (("and", "et", False), ("but", "mais", True))


def _compound_pair(rng: random.Random, max_clauses: int) -> tuple[str, str]:
    """1 to ``max_clauses`` independent clauses joined by and/et or but/mais (statements and negations)."""
    num_clauses = rng.randint(1, max_clauses)
    clauses = [_clause(rng, questions=False) for _ in range(num_clauses)]
    connectors = [rng.choice(_CONNECTORS) for _ in range(num_clauses - 1)]
    if _CONNECTORS[1] in connectors:  # one "but" at most: "A, but B, but C" reads badly
        first_but = connectors.index(_CONNECTORS[1])
        connectors = [c if i == first_but else _CONNECTORS[0] for i, c in enumerate(connectors)]
    en_text, fr_text = _english(clauses[0][0]), _join_french(clauses[0][1])
    for index, (en_words, fr_words, _) in enumerate(clauses[1:]):
        en_connector, fr_connector, comma = connectors[index]
        if en_connector == "and" and index + 1 < len(connectors) and connectors[index + 1][0] == "and":
            # "A, B and C" (a list of clauses), not "A and B and C"; French lists the same way
            en_connector = fr_connector = ""
            comma = True
        separator = "," if comma else ""
        en_text += separator + " " + " ".join(filter(None, [en_connector, _english(en_words)]))
        fr_text += separator + " " + " ".join(filter(None, [fr_connector, _join_french(fr_words)]))
    return _sentence_case(en_text, "."), _sentence_case(fr_text, ".")


_KIND_OF_FRENCH_NOUN = {form: noun.kind for noun in NOUNS for form in (noun.fr_singular, noun.fr_plural)}


def _subject_kind(fr_subject: list[str]) -> str:
    """The kind of thing a French subject is: its noun's kind, "person" for a pronoun."""
    for word in reversed(fr_subject):
        kind = _KIND_OF_FRENCH_NOUN.get(word)
        if kind is not None:
            return kind
    return "person"


def generate_corpus(num_pairs: int, seed: int = 0, *, max_clauses: int = 1) -> list[tuple[str, str]]:
    """``num_pairs`` (English, French) pairs from the project's grammar; the same for the same seed.

    Raw text, as in the real corpus::

        >>> generate_corpus(2, seed=0)  # doctest: +SKIP
        [('She sees the small cat.', 'Elle voit le petit chat.'), ...]

    Sentences repeat (the grammar is small) and one English sentence can
    have several French translations (tu/vous, ils/elles, fatigué/fatiguée).
    About 100,000 pairs a second on one CPU core.

    ``max_clauses > 1`` makes longer sentences (for the fixed-context bottleneck):
    each pair joins 1 to ``max_clauses`` clauses (uniformly), statements or negations,
    with "and"/"et" or ", but"/", mais", and three or more as a list ("A, B and C")::

        >>> generate_corpus(1, seed=0, max_clauses=3)  # doctest: +SKIP
        [('I am tired and she eats an apple.', 'Je suis fatigué et elle mange une pomme.')]

    The default (``max_clauses=1``) draws exactly what it drew before the option existed.
    """
    require_int("num_pairs", num_pairs, at_least=0)
    require_int("seed", seed)
    require_int("max_clauses", max_clauses, at_least=1)  # clauses per sentence
    rng = random.Random(seed)
    if max_clauses == 1:
        return [_pair(rng) for _ in range(num_pairs)]
    return [_compound_pair(rng, max_clauses) for _ in range(num_pairs)]
