"""The ccxt venue: clients (:mod:`.client`), calls with retries (:mod:`.calls`), the broker on a
spot exchange (:mod:`.broker`), reconciliation (:mod:`.reconcile`), live bar feeds
(:mod:`.feeds`), start-up errors (:mod:`.startup`), candle downloads (:mod:`.data`) and the
venue that builds a run's broker (:mod:`.venue`). Nothing is imported here: ccxt takes seconds
to import, so each command imports the module it needs when it runs."""
