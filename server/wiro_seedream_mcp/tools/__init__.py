"""The tools, one module per family: generating (:mod:`.generate`), looking after tasks
(:mod:`.tasks`) and listing them (:mod:`.listing`); :mod:`.common` holds what they share."""
