"""The zoo's builders by card: each builder registers itself with ``@register_model(card)``."""

from keras_zoo.cards import get_card

BUILDERS = {}  # card name -> builder function


def register_model(card):
    """Decorator: the builder of ``card``'s model; the function must carry the card's name."""
    def register(builder):
        if builder.__name__ != card.name:
            raise ValueError(f"the builder of card {card.name!r} is named {builder.__name__!r}")
        if card.name in BUILDERS:
            raise ValueError(f"card {card.name!r} has two builders")
        BUILDERS[card.name] = builder
        return builder
    return register


def get_model(name_or_alias, **kwargs):
    """Build a zoo model by name or alias: ``get_model('resnet-50', weights=None)``; ``kwargs`` go to its builder."""
    return BUILDERS[get_card(name_or_alias).name](**kwargs)
