"""Route each article to an encoder by its language, and score it with that encoder's matcher.

English coverage keeps the English encoder (``MONITOR_EMBEDDER``: fast, and the best on
English); coverage in other languages goes to the multilingual one
(``MONITOR_MULTILINGUAL_EMBEDDER``, multilingual-e5-small by default, ``none`` to turn it off),
which puts an English exemplar and a Persian passage about the same event close together.
Topics stay in English. Each encoder gets its own matcher, with the exemplars embedded in
its own space and the thresholds fitted for it, and every passage records its encoder.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from monitor.matching.embedding import Encoder, load_encoder
from monitor.matching.embedding.encoder import DEFAULT_EMBEDDER, resolve_name
from monitor.matching.passages import Reuse, embed_articles
from monitor.matching.scoring import TopicMatcher
from monitor.models import Article, Match, Passage, Topic

NO_ENCODER = "none"


class Routing:
    """The encoders of a run and their matchers; the multilingual one is loaded when first needed.

    Args:
        topics: the topics in force.
        primary: the encoder for ``primary_languages`` (and for articles of unknown language).
        multilingual: builds the encoder for every other language (None: the primary handles all).
        multilingual_name: that encoder's name, known before it is loaded.
        primary_languages: languages the primary encoder handles.
        strict: require thresholds fitted for each encoder (see :class:`TopicMatcher`).
    """

    def __init__(
        self,
        topics: Sequence[Topic],
        primary: Encoder,
        multilingual: Callable[[], Encoder] | None = None,
        multilingual_name: str | None = None,
        primary_languages: Sequence[str] = ("en",),
        strict: bool = True,
    ) -> None:
        self.topics_in_force = list(topics)
        self.primary = primary
        self.primary_languages = frozenset(primary_languages)
        self.strict = strict
        self._make_multilingual = multilingual
        self.multilingual_name = multilingual_name if multilingual is not None else None
        self._encoders: dict[str, Encoder] = {primary.name: primary}
        self._matchers: dict[str, TopicMatcher] = {primary.name: TopicMatcher(topics, primary, strict)}

    @property
    def names(self) -> list[str]:
        """Names of the encoders this routing may use (the multilingual one even before it is loaded)."""
        return [self.primary.name, *([self.multilingual_name] if self.multilingual_name else [])]

    @property
    def topics(self) -> list[Topic]:
        """The topics, with the primary encoder's thresholds."""
        return self._matchers[self.primary.name].topics

    def encoder_name_for(self, language: str | None) -> str:
        """The name of the encoder an article in this language goes to."""
        if language is None or language in self.primary_languages or self.multilingual_name is None:
            return self.primary.name
        return self.multilingual_name

    def encoder(self, name: str) -> Encoder:
        """An encoder of this routing by name, loading the multilingual one on first use.

        Raises:
            KeyError: the name is none of this routing's encoders.
        """
        if name not in self._encoders:
            if name != self.multilingual_name or self._make_multilingual is None:
                raise KeyError(name)
            encoder = self._make_multilingual()
            self._encoders[name] = encoder
            self._matchers[name] = TopicMatcher(self.topics_in_force, encoder, self.strict)
        return self._encoders[name]

    def encoder_for(self, language: str | None) -> Encoder:
        """The encoder for an article in this language."""
        return self.encoder(self.encoder_name_for(language))

    def matcher(self, model: str) -> TopicMatcher:
        """The matcher for vectors of this encoder."""
        self.encoder(model)
        return self._matchers[model]

    def embed(
        self,
        articles: Sequence[Article],
        words: int,
        overlap: int,
        reuse: Callable[[str], Reuse] | None = None,
    ) -> list[Passage]:
        """Embed each article with its language's encoder (``reuse(model)`` looks up stored vectors)."""
        groups: dict[str, list[Article]] = defaultdict(list)
        for article in articles:
            groups[self.encoder_name_for(article.language)].append(article)
        passages: list[Passage] = []
        for name, group in groups.items():
            encoder = self.encoder(name)
            passages += embed_articles(encoder, group, words, overlap, reuse(name) if reuse else None)
        return passages

    def match(self, articles: Sequence[Article], passages: Sequence[Passage]) -> list[Match]:
        """Score each article with the matcher of the encoder that embedded its passages."""
        by_model: dict[str, list[Passage]] = defaultdict(list)
        model_of: dict[str, str] = {}
        for passage in passages:
            by_model[passage.model].append(passage)
            model_of[passage.article_id] = passage.model
        matches: list[Match] = []
        for model, group in by_model.items():
            wanted = [a for a in articles if model_of.get(a.article_id) == model]
            matches += self.matcher(model).match(wanted, group)
        return matches

    def thresholds(self) -> Mapping[str, list[float]]:
        """Each loaded encoder's thresholds, topic by topic."""
        return {name: [t.threshold for t in m.topics] for name, m in self._matchers.items()}


def load_routing(
    topics: Sequence[Topic],
    embedder: str = DEFAULT_EMBEDDER,
    multilingual: str | None = "multilingual-e5-small",
    primary_languages: Sequence[str] = ("en",),
    model_path: Path | None = None,
    batch_size: int = 32,
    strict: bool = True,
) -> Routing:
    """The routing the settings describe: ``embedder`` for the primary languages, ``multilingual`` for the rest.

    Raises:
        EncoderUnavailable: an encoder is unknown or cannot load (the multilingual one when first needed).
        TopicConfigError: ``strict`` and a topic has no threshold for an encoder in use.
    """
    primary = load_encoder(embedder, model_path, batch_size)
    if not multilingual or multilingual.lower() == NO_ENCODER:
        return Routing(topics, primary, None, None, primary_languages, strict)
    name = resolve_name(multilingual)
    if name == primary.name:  # one encoder for every language
        return Routing(topics, primary, None, None, primary_languages, strict)
    return Routing(
        topics, primary, lambda: load_encoder(name, None, batch_size), name, primary_languages, strict
    )
