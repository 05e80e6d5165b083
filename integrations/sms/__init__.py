"""Outbound SMS providers: each implements `office.contracts.sms.SmsSender`."""

from __future__ import annotations

from integrations.sms.base import SmsSenderKind, get_sms_sender
from integrations.sms.file import FileSms
from integrations.sms.twilio import TWILIO_OPTED_OUT, TwilioSms

__all__ = ["TWILIO_OPTED_OUT", "FileSms", "SmsSenderKind", "TwilioSms", "get_sms_sender"]
