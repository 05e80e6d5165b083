"""Outbound SMS: one `SmsSender` contract, a Twilio and a file provider, one error tree."""

from __future__ import annotations

from integrations.sms.base import (
    TWILIO_OPTED_OUT,
    SmsAmbiguousError,
    SmsError,
    SmsRejected,
    SmsRetryableError,
    SmsSender,
    SmsSenderKind,
    get_sms_sender,
)
from integrations.sms.file import FileSms
from integrations.sms.twilio import TwilioSms

__all__ = [
    "TWILIO_OPTED_OUT",
    "FileSms",
    "SmsAmbiguousError",
    "SmsError",
    "SmsRejected",
    "SmsRetryableError",
    "SmsSender",
    "SmsSenderKind",
    "TwilioSms",
    "get_sms_sender",
]
