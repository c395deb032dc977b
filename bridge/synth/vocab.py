"""Embedded vocabularies for synthetic data: names, places, organisations and local code lists.

Everything here is invented or generic. Names are common UK names, streets are made-up
combinations, telephone numbers come from Ofcom's ranges reserved for drama (never
allocated to real lines), and organisation codes are ODS-like but invented.
"""

from __future__ import annotations


def _words(text: str) -> tuple[str, ...]:
    """Split a whitespace-separated word list (keeps long lists compact)."""
    return tuple(text.split())


# --- People -------------------------------------------------------------------------------

# Formal given name -> informal variants recorded by the other system (nickname discrepancies).
NICKNAMES: dict[str, tuple[str, ...]] = {
    "Robert": ("Bob", "Rob", "Bobby"),
    "Margaret": ("Peggy", "Maggie", "Meg"),
    "William": ("Bill", "Will", "Billy"),
    "Elizabeth": ("Liz", "Beth", "Betty", "Lizzie"),
    "James": ("Jim", "Jimmy"),
    "John": ("Jack", "Johnny"),
    "Richard": ("Dick", "Rich"),
    "Edward": ("Ted", "Eddie"),
    "Thomas": ("Tom", "Tommy"),
    "Joseph": ("Joe",),
    "Patricia": ("Pat", "Trish"),
    "Catherine": ("Kate", "Cathy"),
    "Susan": ("Sue",),
    "Dorothy": ("Dot", "Dolly"),
    "Kathleen": ("Kath",),
    "Christopher": ("Chris",),
    "Michael": ("Mike", "Mick"),
    "Anthony": ("Tony",),
    "Frederick": ("Fred",),
    "Albert": ("Bert",),
    "Henry": ("Harry",),
    "Alexander": ("Alex",),
    "Jennifer": ("Jenny",),
    "Deborah": ("Debbie",),
    "Barbara": ("Babs",),
    "Jacqueline": ("Jackie",),
    "Stephen": ("Steve",),
    "David": ("Dave",),
    "Peter": ("Pete",),
    "Daniel": ("Dan",),
    "Samuel": ("Sam",),
    "Rebecca": ("Becky",),
    "Victoria": ("Vicky",),
    "Christine": ("Chris",),
    "Josephine": ("Jo",),
    "Gwendoline": ("Gwen",),
    "Winifred": ("Winnie",),
    "Florence": ("Flo",),
    "Mary": ("Molly",),
    "Kenneth": ("Ken",),
    "Ronald": ("Ron",),
    "Leonard": ("Len",),
    "Jean": ("Jeannie",),
    "Sandra": ("Sandy",),
    "Pamela": ("Pam",),
    "Nicholas": ("Nick",),
    "Matthew": ("Matt",),
    "Andrew": ("Andy",),
}

MALE_BRITISH_OLDER = _words(
    """
    John William Robert James George Kenneth Ronald Peter Albert Frederick Edward Thomas
    Leonard Dennis Henry Arthur Harold Brian Derek Alan Michael Richard Joseph Stanley Walter
    Roy
    """
)
FEMALE_BRITISH_OLDER = _words(
    """
    Margaret Mary Elizabeth Dorothy Joan Patricia Jean Kathleen Barbara Doris Betty Irene
    Winifred Florence Edna Sheila Gwendoline Audrey Brenda Maureen Pamela Eileen Susan
    Christine Josephine Valerie
    """
)
MALE_BRITISH_YOUNGER = _words(
    """
    David Paul Mark Andrew Stephen Christopher Michael Daniel Matthew James Robert Richard
    Anthony Nicholas Samuel Thomas Jamie Craig Lee Gary Darren Wayne Liam Ryan Alexander
    Joseph
    """
)
FEMALE_BRITISH_YOUNGER = _words(
    """
    Sarah Karen Julie Deborah Jennifer Rebecca Victoria Emma Claire Lisa Nicola Michelle
    Joanne Catherine Helen Amanda Jacqueline Kelly Laura Gemma Rachel Sandra Elizabeth
    Christine Louise Hannah
    """
)
MIDDLE_MALE = _words(
    """
    John James William Edward Arthur George Anthony Paul Lee
    """
)
MIDDLE_FEMALE = _words(
    """
    Ann Mary Elizabeth Jane Louise Margaret Rose Marie May
    """
)

MALE_SOUTH_ASIAN = _words(
    """
    Mohammed Muhammad Abdul Imran Tariq Amjad Rajesh Sanjay Gurdeep Harjit Arif Shahid Javed
    Sunil Kuldip Nadeem
    """
)
FEMALE_SOUTH_ASIAN = _words(
    """
    Fatima Nasreen Shazia Parveen Rukhsana Ayesha Priya Sunita Kiran Harpreet Jaswinder Samina
    Shabana Nusrat Anita Rani
    """
)
MALE_POLISH = _words(
    """
    Piotr Krzysztof Andrzej Tomasz Marek Pawel Jan Stanislaw
    """
)
FEMALE_POLISH = _words(
    """
    Anna Katarzyna Malgorzata Agnieszka Barbara Ewa Zofia
    """
)
MALE_AFRICAN_CARIBBEAN = _words(
    """
    Winston Desmond Clive Delroy Emmanuel Kwame Chinedu Samuel Joseph
    """
)
FEMALE_AFRICAN_CARIBBEAN = _words(
    """
    Hyacinth Beverley Marcia Grace Abena Ngozi Patience Blessing Joy
    """
)
MALE_CHINESE = _words(
    """
    Wei Jun Ming Hao Kwok Chi
    """
)
FEMALE_CHINESE = _words(
    """
    Mei Li Xiu Ling Yan Hui
    """
)

FAMILY_BRITISH = _words(
    """
    Smith Jones Taylor Brown Williams Wilson Johnson Davies Robinson Wright Thompson Evans
    Walker White Roberts Green Hall Wood Jackson Clarke Harrison Turner Hill Cooper Ward
    Morris Moore Lee King Baker Shaw Holmes Atkinson Barker Dawson Lister Hargreaves Sutcliffe
    Greenwood Ackroyd Firth Pickles Crowther Brook Marsden Armitage Haigh Priestley O'Brien
    O'Connor McDonald MacKenzie Fitzgerald Kelly Murphy Gallagher Pearson Kirk Lockwood
    """
)
FAMILY_SOUTH_ASIAN = _words(
    """
    Patel Khan Hussain Ali Ahmed Akhtar Iqbal Mahmood Shah Singh Kaur Sharma Begum Bibi Rashid
    Aslam Sandhu Chaudhry
    """
)
FAMILY_POLISH = _words(
    """
    Kowalski Nowak Wisniewski Wojcik Kaminski Lewandowski Zielinski
    """
)
FAMILY_AFRICAN_CARIBBEAN = _words(
    """
    Campbell Francis Bailey Grant Okafor Mensah Adeyemi Boateng Clarke
    """
)
FAMILY_CHINESE = _words(
    """
    Chen Wong Li Zhang Lam Cheung
    """
)

# NHS Data Dictionary ETHNIC CATEGORY codes (2001 census categories) with a name pool each.
ETHNICITY: tuple[tuple[str, str, str, float], ...] = (
    # code, text, name pool, weight
    ("A", "White - British", "british", 74.0),
    ("B", "White - Irish", "british", 1.5),
    ("C", "White - Any other White background", "polish", 4.0),
    ("D", "Mixed - White and Black Caribbean", "british", 1.0),
    ("F", "Mixed - White and Asian", "british", 0.6),
    ("H", "Asian or Asian British - Indian", "south_asian", 2.5),
    ("J", "Asian or Asian British - Pakistani", "south_asian", 4.0),
    ("K", "Asian or Asian British - Bangladeshi", "south_asian", 0.8),
    ("M", "Black or Black British - Caribbean", "african_caribbean", 1.2),
    ("N", "Black or Black British - African", "african_caribbean", 1.5),
    ("R", "Other Ethnic Groups - Chinese", "chinese", 0.8),
    ("S", "Other Ethnic Groups - Any other ethnic group", "british", 0.8),
    ("Z", "Not stated", "british", 7.3),
)

NAME_POOLS: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    # pool: (male given, female given, family)
    "south_asian": (MALE_SOUTH_ASIAN, FEMALE_SOUTH_ASIAN, FAMILY_SOUTH_ASIAN),
    "polish": (MALE_POLISH, FEMALE_POLISH, FAMILY_POLISH),
    "african_caribbean": (
        MALE_AFRICAN_CARIBBEAN,
        FEMALE_AFRICAN_CARIBBEAN,
        FAMILY_AFRICAN_CARIBBEAN,
    ),
    "chinese": (MALE_CHINESE, FEMALE_CHINESE, FAMILY_CHINESE),
}

# Preferred language by name pool: (ISO 639-1 code as used by UK Core, weight).
LANGUAGES: dict[str, tuple[tuple[str, float], ...]] = {
    "british": (("en", 1.0),),
    "south_asian": (("en", 0.55), ("ur", 0.2), ("pa", 0.15), ("bn", 0.05), ("gu", 0.05)),
    "polish": (("pl", 0.6), ("en", 0.3), ("ro", 0.1)),
    "african_caribbean": (("en", 0.85), ("fr", 0.1), ("ar", 0.05)),
    "chinese": (("yue", 0.5), ("zh", 0.3), ("en", 0.2)),
}
LANGUAGE_NAMES = {
    "en": "English",
    "ur": "Urdu",
    "pa": "Punjabi",
    "bn": "Bengali",
    "gu": "Gujarati",
    "pl": "Polish",
    "ro": "Romanian",
    "fr": "French",
    "ar": "Arabic",
    "yue": "Cantonese",
    "zh": "Mandarin",
}

# HL7 table 0002 marital status.
MARITAL = (("M", 0.42), ("W", 0.28), ("S", 0.18), ("D", 0.12))

# Accessible Information Standard style needs recorded by social care.
ACCESSIBILITY_NEEDS = _words(
    """
    large_print easy_read british_sign_language_interpreter hearing_loop
    telephone_not_suitable carer_to_be_present wheelchair_access
    """
)

# --- Places -------------------------------------------------------------------------------

TOWN = "Leeds"
COUNTY = "West Yorkshire"
# Postcode district -> locality (a generic northern borough; streets are invented).
DISTRICTS = (
    ("LS6", "Headingley"),
    ("LS7", "Chapel Allerton"),
    ("LS8", "Roundhay"),
    ("LS9", "Burmantofts"),
    ("LS11", "Beeston"),
    ("LS12", "Armley"),
    ("LS13", "Bramley"),
    ("LS14", "Seacroft"),
    ("LS15", "Cross Gates"),
    ("LS16", "Adel"),
    ("LS17", "Moortown"),
)
# Postcode inward-unit letters never use C, I, K, M, O or V.
POSTCODE_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"
STREET_FIRST = _words(
    """
    Bramble Kestrel Oak Ash Station Church Mill Victoria Park Moor Beck Ridge Holly Meadow
    Rowan Hawthorn Larch Willow Heather Chapel Quarry Granary Foundry Linden Sycamore Poplar
    Elder Aspen Fern Clover Lark Wren Curlew Heron Spring Valley Hollin Crag
    """
)
STREET_SECOND = _words(
    """
    Road Street Lane Avenue Grove Close Mount Terrace Crescent Drive Way View Gardens Walk
    Place Rise Court Fold Garth
    """
)
# Ofcom reserves 0113 496 0000-0999 and 07700 900000-900999 for drama: never real lines.
LANDLINE_PREFIX = "0113 496 0"
MOBILE_PREFIX = "07700 900"

# --- Organisations --------------------------------------------------------------------------

TRUST_CODE = "RXX"
TRUST_NAME = "Aire Valley Community Health NHS Trust"
SENDING_APP = "CHS"
RECEIVING_APP = "CAREBRIDGE"
LA_CODE = "E08000999"
LA_NAME = "Aire Valley Borough Council"

PRACTICE_PATTERNS = (
    "{loc} Medical Centre",
    "{loc} Surgery",
    "{street} Health Centre",
    "The {street} Practice",
    "Dr {family} & Partners",
    "{loc} Family Practice",
)

COMMUNITY_WARDS = (
    ("ROWAN", "Rowan Ward"),
    ("WILLOW", "Willow Ward"),
    ("LARCH", "Larch Intermediate Care Unit"),
    ("HEATHER", "Heather Ward"),
)
URGENT_CARE_LOCATION = ("UTC", "Urgent Treatment Centre")
OUTPATIENT_LOCATION = ("THERAPY", "Therapy Outpatients")

# --- Community health codes -----------------------------------------------------------------

CHS_TEAMS = (
    ("DN-N", "District Nursing North", "district_nurse"),
    ("DN-S", "District Nursing South", "district_nurse"),
    ("DN-E", "District Nursing East", "district_nurse"),
    ("DN-W", "District Nursing West", "district_nurse"),
    ("CM", "Community Matrons", "community_matron"),
    ("NT", "Neighbourhood Therapy", "physiotherapist"),
    ("ICT", "Intermediate Care Team", "occupational_therapist"),
    ("FALLS", "Falls Prevention Service", "physiotherapist"),
    ("CONT", "Continence Service", "continence_nurse"),
    ("TV", "Tissue Viability", "tissue_viability_nurse"),
    ("SLT", "Adult Speech and Language Therapy", "speech_and_language_therapist"),
    ("MEM", "Memory Assessment Service", "mental_health_nurse"),
)
# Local referral reason code, text, team codes that take it.
CHS_REFERRAL_REASONS = (
    ("RR01", "Wound care", ("DN-N", "DN-S", "DN-E", "DN-W", "TV")),
    ("RR02", "Falls assessment", ("FALLS", "NT")),
    ("RR03", "Catheter care", ("DN-N", "DN-S", "DN-E", "DN-W")),
    ("RR04", "Diabetes management and insulin administration", ("DN-N", "DN-S", "DN-E", "DN-W")),
    ("RR05", "Palliative and end of life care", ("DN-N", "DN-S", "DN-E", "DN-W", "CM")),
    ("RR06", "Rehabilitation after hospital discharge", ("ICT", "NT")),
    ("RR07", "Continence assessment", ("CONT",)),
    ("RR08", "Medication administration", ("DN-N", "DN-S", "DN-E", "DN-W")),
    ("RR09", "Pressure ulcer prevention", ("TV", "DN-N", "DN-S")),
    ("RR10", "Long-term condition case management", ("CM",)),
    ("RR11", "Equipment and home safety assessment", ("ICT", "NT")),
    ("RR12", "Swallowing assessment", ("SLT",)),
    ("RR13", "Memory assessment", ("MEM",)),
    ("RR14", "Urgent community response (2-hour)", ("ICT",)),
)
CHS_REFERRAL_SOURCES = (
    ("GP", "General practitioner", 0.4),
    ("ACUTE", "Acute hospital", 0.25),
    ("ASC", "Adult social care", 0.1),
    ("SELF", "Self or family", 0.1),
    ("AMB", "Ambulance service", 0.07),
    ("CAREHOME", "Care home", 0.08),
)
CHS_CONTACT_TYPES = (
    ("HV", "Home visit", 0.7),
    ("CL", "Clinic appointment", 0.12),
    ("TEL", "Telephone contact", 0.15),
    ("VID", "Video consultation", 0.03),
)
CHS_CONTACT_OUTCOMES = (
    ("attended", 0.86),
    ("no_access", 0.04),
    ("did_not_attend", 0.03),
    ("cancelled_by_patient", 0.04),
    ("cancelled_by_service", 0.03),
)

# Problem list entries: local code, text, SNOMED CT concept id (None where not mapped), category.
# Categories let mappings assign sensitivity labels: mental_health -> PSY,
# substance_misuse -> ETH, sexual_health -> SEX/STD, hiv -> HIV.
PROBLEMS_PHYSICAL = (
    ("P001", "Type 2 diabetes mellitus", "44054006"),
    ("P002", "Essential hypertension", "59621000"),
    ("P003", "Chronic obstructive lung disease", "13645005"),
    ("P004", "Heart failure", "84114007"),
    ("P005", "Atrial fibrillation", "49436004"),
    ("P006", "Osteoarthritis", "396275006"),
    ("P007", "Cerebrovascular accident", "230690007"),
    ("P008", "Chronic kidney disease stage 3", "433144002"),
    ("P009", "Pressure ulcer", "399912005"),
    ("P010", "Venous leg ulcer", None),
    ("P011", "History of fall", "161898004"),
    ("P012", "Frailty", "248279007"),
    ("P013", "Urinary incontinence", "165232002"),
    ("P014", "Parkinson's disease", "49049000"),
    ("P015", "Asthma", "195967001"),
    ("P016", "Multiple sclerosis", "24700007"),
)
PROBLEMS_MEMORY = (
    ("P020", "Dementia", "52448006"),
    ("P021", "Alzheimer's disease", "26929004"),
)
PROBLEMS_LEARNING = (
    ("P030", "Learning disability", "110359009"),
    ("P031", "Down syndrome", "41040004"),
    ("P032", "Autism spectrum condition", None),
)
PROBLEMS_MENTAL = (
    ("P040", "Depressive disorder", "35489007"),
    ("P041", "Schizophrenia", "58214004"),
    ("P042", "Bipolar disorder", "13746004"),
    ("P043", "Anxiety disorder", "197480006"),
)
PROBLEMS_SUBSTANCE = (
    ("P050", "Alcohol dependence", "66590003"),
    ("P051", "Opioid dependence", "75544000"),
)
PROBLEMS_SEXUAL_HEALTH = (("P060", "Chlamydial infection", "105629000"),)
PROBLEMS_HIV = (("P070", "Human immunodeficiency virus infection", "86406008"),)

CHS_ALERTS = (
    ("DNACPR", "Do not attempt cardiopulmonary resuscitation decision in place"),
    ("KEYSAFE", "Key safe in use - code held by the person and family, not recorded here"),
    ("LONEWKR", "Lone worker risk - visit in pairs"),
    ("FALLS", "High risk of falls"),
)

# ICD-10 admitting diagnoses for community hospital / intermediate care admissions.
ICD10_ADMISSION = (
    ("S720", "Fracture of neck of femur"),
    ("J189", "Pneumonia, unspecified"),
    ("N390", "Urinary tract infection, site not specified"),
    ("I500", "Congestive heart failure"),
    ("J441", "Chronic obstructive pulmonary disease with acute exacerbation"),
    ("R54", "Senility"),
    ("R296", "Tendency to fall, not elsewhere classified"),
    ("I639", "Cerebral infarction, unspecified"),
    ("L89", "Decubitus ulcer and pressure area"),
    ("F03", "Unspecified dementia"),
)
# NHS Data Dictionary ADMISSION SOURCE and DISCHARGE DESTINATION codes (a subset).
ADMISSION_SOURCES = (("19", 0.55), ("51", 0.4), ("85", 0.05))
DISCHARGE_DESTINATIONS = (
    ("19", 0.7),  # usual place of residence
    ("29", 0.05),  # temporary place of residence
    ("51", 0.08),  # NHS other hospital provider, general ward
    ("65", 0.03),  # local authority residential accommodation
    ("85", 0.12),  # non-NHS run care home
    ("88", 0.02),  # non-NHS run hospice
)
# HL7 table 0063 relationship codes for the carer / next of kin.
RELATIONSHIPS = (
    ("Wife", "SPO", "Spouse"),
    ("Husband", "SPO", "Spouse"),
    ("Partner", "DOM", "Life partner"),
    ("Daughter", "CHD", "Child"),
    ("Son", "CHD", "Child"),
    ("Sister", "SIB", "Sibling"),
    ("Brother", "SIB", "Sibling"),
    ("Friend", "FND", "Friend"),
    ("Neighbour", "OTH", "Other"),
    ("Mother", "MTH", "Mother"),
    ("Father", "FTH", "Father"),
)

# --- Adult social care codes (DHSC client-level data vocabulary) -----------------------------

# CLD Primary_Support_Reason values.
PSR_PHYSICAL_ACCESS = "Physical Support: Access and Mobility Only"
PSR_PHYSICAL_PERSONAL = "Physical Support: Personal Care Support"
PSR_SENSORY_VISUAL = "Sensory Support: Support for Visual Impairment"
PSR_SENSORY_HEARING = "Sensory Support: Support for Hearing Impairment"
PSR_MEMORY = "Support with Memory and Cognition"
PSR_LEARNING = "Learning Disability Support"
PSR_MENTAL = "Mental Health Support"
PSR_SUBSTANCE = "Social Support: Substance Misuse Support"
PSR_ISOLATION = "Social Support: Support for Social Isolation/Other"

# CLD Request_Route_of_Access values.
ROUTE_DISCHARGE = "Discharge from Hospital"
ROUTE_DIVERSION = "Diversion from Hospital Services"
ROUTES_OTHER = (
    ("Community / Other route", 0.82),
    ("Self-Funder with Depleted Funds", 0.06),
    ("Planned Entry (Transition)", 0.04),
    ("Prison", 0.01),
    (ROUTE_DIVERSION, 0.07),
)
ASC_CONTACT_SOURCES = (
    ("self", 0.18),
    ("family_or_friend", 0.22),
    ("gp", 0.15),
    ("hospital", 0.2),
    ("community_health", 0.12),
    ("police", 0.03),
    ("housing", 0.04),
    ("voluntary_sector", 0.06),
)
ASC_CONTACT_REASONS = (
    "Struggling with personal care at home",
    "Recent falls at home",
    "Carer breakdown",
    "Request for home care support",
    "Hospital discharge support needed",
    "Request for equipment or adaptations",
    "Memory problems affecting daily living",
    "Request for day opportunities",
    "Social isolation",
    "Financial difficulties",
)
ASC_SAFEGUARDING_REASONS = (
    "Concern raised about possible abuse",
    "Concern about self-neglect",
    "Concern about financial exploitation",
)
# Local triage outcome codes (front door), aligned to CLD request Event_Outcome wording.
TRIAGE_OUTCOMES = (
    ("TO01", "Information and advice", 0.25),
    ("TO02", "Signposted to universal or other services", 0.12),
    ("TO03", "Progress to assessment", 0.38),
    ("TO04", "Short term support to maximise independence (reablement)", 0.17),
    ("TO05", "Safeguarding concern raised", 0.05),
    ("TO06", "No further action", 0.03),
)
ASSESSMENT_TYPES = (
    ("AT01", "Care Act needs assessment (section 9)", 0.7),
    ("AT02", "Review of care and support plan", 0.2),
    ("AT03", "Financial assessment", 0.1),
)
ASSESSMENT_METHODS = (
    ("face_to_face", 0.7),
    ("telephone", 0.2),
    ("video", 0.05),
    ("supported_self_assessment", 0.05),
)
# Care and Support (Eligibility Criteria) Regulations 2015, reg. 2(2) outcomes.
ELIGIBILITY_OUTCOMES = (
    "managing_and_maintaining_nutrition",
    "maintaining_personal_hygiene",
    "managing_toilet_needs",
    "being_appropriately_clothed",
    "being_able_to_make_use_of_the_home_safely",
    "maintaining_a_habitable_home_environment",
    "developing_and_maintaining_family_or_other_personal_relationships",
    "accessing_and_engaging_in_work_training_education_or_volunteering",
    "making_use_of_necessary_facilities_or_services_in_the_local_community",
    "carrying_out_any_caring_responsibilities_for_a_child",
)
ASSESSMENT_OUTCOMES_ELIGIBLE = (
    ("Long Term Support: Community", 0.6),
    ("Long Term Support: Residential Care", 0.15),
    ("Long Term Support: Nursing Care", 0.08),
    ("Short Term Support: ST-Max", 0.17),
)
ASSESSMENT_OUTCOMES_NOT_ELIGIBLE = (
    ("Universal Services / Signposted to Other Services", 0.6),
    ("No Services Provided - No Identified Needs", 0.25),
    ("No Services Provided - Needs Met by Carer", 0.15),
)

# Local service code -> (CLD Service_Type, CLD Service_Component, Delivery_Mechanism,
# unit type, cost frequency).
SERVICES = {
    "SV01": ("Short Term Support: ST-Max", "Reablement", "CASSR Provided", "hours", "Weekly"),
    "SV02": (
        "Long Term Support: Community",
        "Home Support",
        "CASSR Commissioned Support",
        "hours",
        "Hourly",
    ),
    "SV03": (
        "Long Term Support: Community",
        "Day Care",
        "CASSR Commissioned Support",
        "days",
        "Daily",
    ),
    "SV04": (
        "Long Term Support: Residential Care",
        "Long Term Residential Care",
        "CASSR Commissioned Support",
        "weeks",
        "Weekly",
    ),
    "SV05": (
        "Long Term Support: Nursing Care",
        "Long Term Nursing Care",
        "CASSR Commissioned Support",
        "weeks",
        "Weekly",
    ),
    "SV06": ("Long Term Support: Community", "Direct Payment", "Direct Payment", "hours", "Weekly"),
    "SV07": (
        "Short Term Support: Other Short Term",
        "Short Term Residential Care",
        "CASSR Commissioned Support",
        "weeks",
        "Weekly",
    ),
}
PROVIDERS = {
    "SV01": ("Aire Valley Reablement Service",),
    "SV02": (
        "Brightside Home Care Ltd",
        "Oakwood Care Services",
        "Kindred Homecare",
        "Riverside Support at Home",
    ),
    "SV03": ("Sunrise Day Centre", "Moorside Day Opportunities"),
    "SV04": ("Meadowview Care Home", "The Beeches Residential Home", "Rowanlea House"),
    "SV05": ("Aire Valley Nursing Home", "Hollin Park Nursing Home"),
    "SV06": ("Direct payment - personal assistant",),
    "SV07": ("Meadowview Care Home", "The Beeches Residential Home"),
}

ASC_TEAMS = (
    ("T01", "Front Door"),
    ("T02", "North Locality Team"),
    ("T03", "South Locality Team"),
    ("T04", "East Locality Team"),
    ("T05", "West Locality Team"),
    ("T06", "Reablement Team"),
    ("T07", "Hospital Discharge Team"),
    ("T08", "Learning Disability Team"),
    ("T09", "Mental Health Social Work Team"),
    ("T10", "Safeguarding Adults Team"),
)
ASC_WORKER_ROLES = {
    "T01": "Social Care Assessor",
    "T02": "Social Worker",
    "T03": "Social Worker",
    "T04": "Social Worker",
    "T05": "Social Worker",
    "T06": "Reablement Officer",
    "T07": "Social Worker",
    "T08": "Social Worker",
    "T09": "Approved Mental Health Professional",
    "T10": "Safeguarding Practitioner",
}

CONSENT_SCOPES = (("community_health", 0.45), ("health_partners", 0.55))
EXCLUDABLE_CATEGORIES = ("mental_health", "substance_misuse", "sexual_health")

# Care Act 2014 statutory guidance types of abuse and neglect.
SAFEGUARDING_CATEGORIES = (
    ("SG01", "Neglect and acts of omission", 0.3),
    ("SG02", "Self-neglect", 0.2),
    ("SG03", "Financial or material abuse", 0.18),
    ("SG04", "Physical abuse", 0.1),
    ("SG05", "Psychological abuse", 0.08),
    ("SG06", "Domestic abuse", 0.08),
    ("SG07", "Organisational abuse", 0.03),
    ("SG08", "Sexual abuse", 0.02),
    ("SG09", "Discriminatory abuse", 0.005),
    ("SG10", "Modern slavery", 0.005),
)
SAFEGUARDING_LOCATIONS = (
    ("own_home", 0.7),
    ("care_home", 0.15),
    ("hospital", 0.05),
    ("community_setting", 0.1),
)
SAFEGUARDING_OUTCOMES = (
    ("risk_removed", 0.3),
    ("risk_reduced", 0.55),
    ("risk_remains", 0.1),
    ("no_further_action", 0.05),
)
