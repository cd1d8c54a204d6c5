"""Labels: what a model learns. ``config`` holds the label spec (:class:`LabelConfig`, the
``labels:`` config section, light to import); ``build`` makes the labels from candles (direction,
binary, forward returns, triple barrier, meta-labels)."""
