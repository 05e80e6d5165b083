"""X12 eligibility code tables, the rule that turns an AAA rejection into an office action,
and the one reader of a payer's amounts.

Labels follow the 005010X279A1 code lists (see the eligibility domain brief, §1). They are for
people reading a result; decisions key on the codes themselves.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from decimal import Decimal
from typing import Final

from office.eligibility.types import Aaa, AaaAction, Benefit, Entity

__all__ = [
    "AAA_FOLLOWUPS",
    "AAA_REASONS",
    "ACTIVE_CODES",
    "AMOUNT_DIGITS",
    "COVERAGE_LEVELS",
    "EB01_CODES",
    "EB06_TIME_PERIODS",
    "INACTIVE_CODES",
    "INSURANCE_TYPES",
    "OTHER_PAYER_ROLES",
    "SERVICE_TYPES",
    "classify_aaa",
    "other_payers",
    "overall_action",
    "primary_care_provider",
    "read_amount",
]

ACTIVE_CODES: Final = frozenset({"1", "2", "3", "4", "5"})
INACTIVE_CODES: Final = frozenset({"6", "7", "8"})

EB01_CODES: Final[dict[str, str]] = {
    "1": "Active Coverage",
    "2": "Active - Full Risk Capitation",
    "3": "Active - Services Capitated",
    "4": "Active - Services Capitated to Primary Care Physician",
    "5": "Active - Pending Investigation",
    "6": "Inactive",
    "7": "Inactive - Pending Eligibility Update",
    "8": "Inactive - Pending Investigation",
    "A": "Co-Insurance",
    "B": "Co-Payment",
    "C": "Deductible",
    "CB": "Coverage Basis",
    "D": "Benefit Description",
    "E": "Exclusions",
    "F": "Limitations",
    "G": "Out of Pocket (Stop Loss)",
    "H": "Unlimited",
    "I": "Non-Covered",
    "J": "Cost Containment",
    "K": "Reserve",
    "L": "Primary Care Provider",
    "M": "Pre-existing Condition",
    "MC": "Managed Care Coordinator",
    "N": "Services Restricted to Following Provider",
    "O": "Not Deemed a Medical Necessity",
    "P": "Benefit Disclaimer",
    "Q": "Second Surgical Opinion Required",
    "R": "Other or Additional Payor",
    "S": "Prior Year(s) History",
    "T": "Card(s) Reported Lost/Stolen",
    "U": "Contact Following Entity for Eligibility or Benefit Information",
    "V": "Cannot Process",
    "W": "Other Source of Data",
    "X": "Health Care Facility",
    "Y": "Spend Down",
}

COVERAGE_LEVELS: Final[dict[str, str]] = {
    "CHD": "Children Only",
    "DEP": "Dependents Only",
    "ECH": "Employee and Children",
    "EMP": "Employee Only",
    "ESP": "Employee and Spouse",
    "FAM": "Family",
    "IND": "Individual",
    "SPC": "Spouse and Children",
    "SPO": "Spouse Only",
}

EB06_TIME_PERIODS: Final[dict[str, str]] = {
    "6": "Hour",
    "7": "Day",
    "13": "24 Hours",
    "21": "Years",
    "22": "Service Year",
    "23": "Calendar Year",
    "24": "Year to Date",
    "25": "Contract",
    "26": "Episode",
    "27": "Visit",
    "28": "Outlier",
    "29": "Remaining",
    "30": "Exceeded",
    "31": "Not Exceeded",
    "32": "Lifetime",
    "33": "Lifetime Remaining",
    "34": "Month",
    "35": "Week",
    "36": "Admission",
}

INSURANCE_TYPES: Final[dict[str, str]] = {
    "12": "Medicare Secondary Working Aged Beneficiary or Spouse with Employer Group Health Plan",
    "13": "Medicare Secondary End-Stage Renal Disease Beneficiary",
    "14": "Medicare Secondary, No-fault Insurance including Auto is Primary",
    "15": "Medicare Secondary Worker's Compensation",
    "16": "Medicare Secondary Public Health Service or Other Federal Agency",
    "41": "Medicare Secondary Black Lung",
    "42": "Medicare Secondary Veteran's Administration",
    "43": "Medicare Secondary Disabled Beneficiary Under Age 65 with Large Group Health Plan",
    "47": "Medicare Secondary, Other Liability Insurance is Primary",
    "C1": "Commercial",
    "CO": "Consolidated Omnibus Budget Reconciliation Act (COBRA)",
    "CP": "Medicare Conditionally Primary",
    "D": "Disability",
    "EP": "Exclusive Provider Organization",
    "GP": "Group Policy",
    "HM": "Health Maintenance Organization (HMO)",
    "HN": "Health Maintenance Organization (HMO) - Medicare Risk",
    "IN": "Indemnity",
    "IP": "Individual Policy",
    "MA": "Medicare Part A",
    "MB": "Medicare Part B",
    "MC": "Medicaid",
    "MH": "Medigap Part A",
    "MI": "Medigap Part B",
    "MP": "Medicare Primary",
    "OT": "Other",
    "PR": "Preferred Provider Organization (PPO)",
    "PS": "Point of Service (POS)",
    "QM": "Qualified Medicare Beneficiary",
    "SP": "Supplemental Policy",
    "WC": "Workers Compensation",
}

SERVICE_TYPES: Final[dict[str, str]] = {
    "1": "Medical Care",
    "2": "Surgical",
    "3": "Consultation",
    "4": "Diagnostic X-Ray",
    "5": "Diagnostic Lab",
    "6": "Radiation Therapy",
    "7": "Anesthesia",
    "8": "Surgical Assistance",
    "9": "Other Medical",
    "12": "Durable Medical Equipment Purchase",
    "13": "Ambulatory Service Center Facility",
    "18": "Durable Medical Equipment Rental",
    "23": "Diagnostic Dental",
    "30": "Health Benefit Plan Coverage",
    "33": "Chiropractic",
    "35": "Dental Care",
    "41": "Routine (Preventive) Dental",
    "42": "Home Health Care",
    "45": "Hospice",
    "47": "Hospital",
    "48": "Hospital - Inpatient",
    "50": "Hospital - Outpatient",
    "52": "Hospital - Emergency Medical",
    "53": "Hospital - Ambulatory Surgical",
    "60": "General Benefits",
    "62": "MRI/CAT Scan",
    "67": "Smoking Cessation",
    "68": "Well Baby Care",
    "69": "Maternity",
    "73": "Diagnostic Medical",
    "76": "Dialysis",
    "78": "Chemotherapy",
    "80": "Immunizations",
    "81": "Routine Physical",
    "82": "Family Planning",
    "86": "Emergency Services",
    "88": "Pharmacy",
    "91": "Brand Name Prescription Drug",
    "92": "Generic Prescription Drug",
    "93": "Podiatry",
    "96": "Professional (Physician)",
    "98": "Professional (Physician) Visit - Office",
    "99": "Professional (Physician) Visit - Inpatient",
    "A0": "Professional (Physician) Visit - Outpatient",
    "A4": "Psychiatric",
    "A6": "Psychotherapy",
    "A7": "Psychiatric - Inpatient",
    "A8": "Psychiatric - Outpatient",
    "A9": "Rehabilitation",
    "AD": "Occupational Therapy",
    "AE": "Physical Medicine",
    "AF": "Speech Therapy",
    "AG": "Skilled Nursing Care",
    "AI": "Substance Abuse",
    "AL": "Vision (Optometry)",
    "BY": "Physician Visit - Office: Sick",
    "BZ": "Physician Visit - Office: Well",
    "CF": "Mental Health Provider - Outpatient",
    "DM": "Durable Medical Equipment",
    "MH": "Mental Health",
    "PT": "Physical Therapy",
    "UC": "Urgent Care",
}

AAA_REASONS: Final[dict[str, str]] = {
    "04": "Authorized Quantity Exceeded",
    "15": "Required Application Data Missing",
    "33": "Input Errors",
    "35": "Out of Network",
    "41": "Authorization/Access Restrictions",
    "42": "Unable to Respond at Current Time",
    "43": "Invalid/Missing Provider Identification",
    "44": "Invalid/Missing Provider Name",
    "45": "Invalid/Missing Provider Specialty",
    "46": "Invalid/Missing Provider Phone Number",
    "47": "Invalid/Missing Provider State",
    "48": "Invalid/Missing Referring Provider Identification Number",
    "49": "Provider is Not Primary Care Physician",
    "50": "Provider Ineligible for Inquiries",
    "51": "Provider Not on File",
    "52": "Service Dates Not Within Provider Plan Enrollment",
    "53": "Inquired Benefit Inconsistent with Provider Type",
    "54": "Inappropriate Product/Service ID Qualifier",
    "55": "Inappropriate Product/Service ID",
    "56": "Inappropriate Date",
    "57": "Invalid/Missing Date(s) of Service",
    "58": "Invalid/Missing Date-of-Birth",
    "60": "Date of Birth Follows Date(s) of Service",
    "61": "Date of Death Precedes Date(s) of Service",
    "62": "Date of Service Not Within Allowable Inquiry Period",
    "63": "Date of Service in Future",
    "64": "Invalid/Missing Patient ID",
    "65": "Invalid/Missing Patient Name",
    "66": "Invalid/Missing Patient Gender Code",
    "67": "Patient Not Found",
    "68": "Duplicate Patient ID Number",
    "69": "Inconsistent with Patient's Age",
    "70": "Inconsistent with Patient's Gender",
    "71": "Patient Birth Date Does Not Match That for the Patient on the Database",
    "72": "Invalid/Missing Subscriber/Insured ID",
    "73": "Invalid/Missing Subscriber/Insured Name",
    "74": "Invalid/Missing Subscriber/Insured Gender Code",
    "75": "Subscriber/Insured Not Found",
    "76": "Duplicate Subscriber/Insured ID Number",
    "77": "Subscriber Found, Patient Not Found",
    "78": "Subscriber/Insured Not in Group/Plan Identified",
    "79": "Invalid Participant Identification",
    "80": "No Response received - Transaction Terminated",
    "97": "Invalid or Missing Provider Address",
    "98": "Experimental Service or Procedure",
    "AA": "Authorization Number Not Found",
    "AE": "Requires Primary Care Physician Authorization",
    "AF": "Invalid/Missing Diagnosis Code(s)",
    "AG": "Invalid/Missing Procedure Code(s)",
    "AO": "Additional Patient Condition Information Required",
    "CI": "Certification Information Does Not Match Patient",
    "E8": "Requires Medical Review",
    "IA": "Invalid Authorization Number Format",
    "MA": "Missing Authorization",
    "T4": "Payer Name or Identifier Missing",
}

AAA_FOLLOWUPS: Final[dict[str, str]] = {
    "C": "Please Correct and Resubmit",
    "N": "Resubmission Not Allowed",
    "P": "Please Resubmit Original Transaction",
    "R": "Resubmission Allowed",
    "S": "Do Not Resubmit; Inquiry Initiated to a Third Party",
    "W": "Please Wait 30 Days and Resubmit",
    "X": "Please Wait 10 Days and Resubmit",
    "Y": "Do Not Resubmit; We Will Hand Deliver the Response",
}

# 2120 entity roles (NM101) that name another payer under an EB*R.
OTHER_PAYER_ROLES: Final = frozenset({"PR", "PRP", "SEP", "TTP", "P4", "2B"})

_PAYER_LOOPS: Final = frozenset({"2000A", "2100A"})
_PROVIDER_LOOPS: Final = frozenset({"2000B", "2100B"})
_PATIENT_LOOPS: Final = frozenset({"2000C", "2100C", "2110C", "2000D", "2100D", "2110D"})

# 42 and 80 are the payer's own outage wherever they appear; 04 is a volume cap, also temporary.
_RETRY: Final = frozenset({"42", "80"})
_PAYER_RETRY: Final = _RETRY | {"04"}
_PAYER_SETUP: Final = frozenset({"41", "79", "T4"})
_PROVIDER_SETUP: Final = frozenset(
    {"15", "41", "43", "44", "45", "46", "47", "48", "50", "51", "79", "97", "T4"}
)
# Patient-loop codes the office fixes by correcting demographics, ids or the date of service.
# 56/57 (dates), 66 and 77 are the 2100D twins of codes in the brief's list.
_PATIENT_DATA: Final = frozenset(
    {"15", "33", "56", "57", "58", "60", "62", "63", "64", "65", "66", "67", "71", "72", "73"}
    | {"74", "75", "77", "78"}
)
# Provider codes a payer may also report inside a patient loop.
_PATIENT_PROVIDER_SETUP: Final = (_PROVIDER_SETUP - {"15"}) | {"52"}


def classify_aaa(loop: str, code: str) -> AaaAction:
    """Decide what the office does about one AAA, given the loop it came from."""
    loop, code = loop.strip().upper(), code.strip().upper()
    if loop in _PAYER_LOOPS:
        if code in _PAYER_RETRY:
            return AaaAction.RETRY_LATER
        if code in _PAYER_SETUP:
            return AaaAction.FIX_PROVIDER_SETUP
        return AaaAction.HUMAN_REVIEW
    if code in _RETRY:
        return AaaAction.RETRY_LATER
    if loop in _PROVIDER_LOOPS:
        if code in _PROVIDER_SETUP:
            return AaaAction.FIX_PROVIDER_SETUP
        return AaaAction.HUMAN_REVIEW
    if loop in _PATIENT_LOOPS:
        if code in _PATIENT_DATA:
            return AaaAction.FIX_PATIENT_DATA
        if code in _PATIENT_PROVIDER_SETUP:
            return AaaAction.FIX_PROVIDER_SETUP
    # 76/68 (duplicate ids), 35, 49, 53-55, 69, 70, 98, the authorization codes and anything
    # unknown need a person.
    return AaaAction.HUMAN_REVIEW


# Which action wins when one result carries several AAA: an outage makes the rest moot (the
# brief's payer-level 79+42 is a retry), then setup problems, then anything needing a person.
_PRECEDENCE: Final = (
    AaaAction.RETRY_LATER,
    AaaAction.FIX_PROVIDER_SETUP,
    AaaAction.HUMAN_REVIEW,
    AaaAction.FIX_PATIENT_DATA,
)


def overall_action(aaa: Iterable[Aaa]) -> AaaAction | None:
    """Pick the one action for a result's AAA list; None when there is nothing to act on."""
    actions = {item.action for item in aaa}
    for action in _PRECEDENCE:
        if action in actions:
            return action
    return None


def primary_care_provider(benefits: Iterable[Benefit]) -> Entity | None:
    """The EB*L's NM1*P3; some senders misplace the LS..LE, so any P3 or EB*L provider next."""
    benefits = tuple(benefits)
    for benefit in benefits:
        if benefit.code == "L":
            for entity in benefit.entities:
                if entity.role == "P3":
                    return entity
    for benefit in benefits:
        for entity in benefit.entities:
            if entity.role == "P3":
                return entity
    for benefit in benefits:
        if benefit.code == "L":
            for entity in benefit.entities:
                if entity.role in ("1P", "FA"):
                    return entity
    return None


def other_payers(benefits: Iterable[Benefit]) -> tuple[Entity, ...]:
    """The payers named under EB*R (coordination of benefits)."""
    return tuple(
        entity
        for benefit in benefits
        if benefit.code == "R"
        for entity in benefit.entities
        if entity.role in OTHER_PAYER_ROLES
    )


# The longest numeric element of a 271 (AMT02, EB07) is R 1/18: at most 18 digits.
AMOUNT_DIGITS: Final = 18
_PLAIN_DECIMAL: Final = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")


def read_amount(text: str) -> Decimal | None:
    """A payer's amount, percent or quantity as a Decimal; None unless a plain, bounded number.

    Plain decimal notation only (".2", "10.00", "-5"), at most AMOUNT_DIGITS digits: no
    exponent, NaN or Infinity, so an answer cannot hand the rules a number that is unbounded,
    fails to compare, or takes gigabytes to print ("1E+999999999"). X12 and JSON payers alike.
    """
    value = text.strip()
    if len(value) > AMOUNT_DIGITS + 2 or _PLAIN_DECIMAL.fullmatch(value) is None:
        return None
    digits = len(value) - value.startswith("-") - ("." in value)
    return Decimal(value) if digits <= AMOUNT_DIGITS else None
