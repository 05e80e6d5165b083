"""The contracts the domain needs from the outside world: a Protocol and an error tree each.

`integrations/` implements them (`payers`, `mail`, `sms`); services receive an
implementation and never build one.
"""
