"""Word pools and vocabularies the simulated fleet draws its values from.

The pools deliberately mix plain ASCII with the characters that break naive
clients: accented Latin-1 letters (é, ü, ß), XML specials (``&``, ``<``),
trailing spaces and one non-Latin-1 letter (Ł) that only UTF-8 documents carry.
Everything used inside ``patch_list_all`` must stay Latin-1 encodable because
that service declares ``encoding="ISO-8859-1"``.
"""

from __future__ import annotations

from typing import Final

CLIENT_PREFIXES: Final = (
    "Acme",
    "Café Müller",
    "Bäckerei Schön",
    "Smith & Jones",
    "<Globex>",
    "Initech",
    "Łódź Logistics",
    "Société Générale des Eaux",
    "Umbrella",
    "Núñez Dental",
    "Hooli",
    "Stark & Wayne",
    "Vandelay",
    "Øresund Shipping",
    "Wonka",
    "Duff",
)
CLIENT_SUFFIXES: Final = ("Ltd", "GmbH", "S.A.", "LLC", "& Co", "Inc.", "", "Partners ")
SITE_NAMES: Final = (
    "Head Office",
    "Warehouse",
    "Zürich Branch",
    "Lab <B>",
    "Remote Workers",
    "Straße 12",
    "R&D",
    "Datacenter",
    "Café Floor",
    "Main Site",
)
TIMEZONES: Final = ("Europe/London", "America/Chicago", "Europe/Paris", "Australia/Sydney", "")
SERVER_PREFIXES: Final = ("SRV", "DC", "FS", "SQL", "EXCH", "HV", "APP")
WORKSTATION_PREFIXES: Final = ("WS", "LT", "PC", "DESKTOP", "RÉCEPTION", "Büro")
USERS: Final = ("peter", "anna", "jürgen", "zoë", "admin", "o'brien", "svc_backup", "")
DOMAINS: Final = ("CORP", "WORKGROUP", "ACME.LOCAL", "müller.local", "")
MANUFACTURERS: Final = (
    ("Dell Inc.", ("PowerEdge R740", "OptiPlex 7090", "Latitude 5420")),
    ("HP", ("ProLiant DL380 Gen10", "EliteBook 840 G8", "ProDesk 600 G6")),
    ("LENOVO", ("ThinkSystem SR650", "ThinkPad T14", "ThinkCentre M720q")),
    ("VMware, Inc.", ("VMware Virtual Platform", "VMware7,1")),
    ("Microsoft Corporation", ("Virtual Machine",)),
)
SERVER_OS: Final = (
    ("Microsoft Windows Server 2019 Standard", "10.0.17763"),
    ("Microsoft Windows Server 2022 Datacenter", "10.0.20348"),
    ("Microsoft Windows Server 2016 Standard", "10.0.14393"),
    ("Microsoft Windows Server 2012 R2 Standard", "6.3.9600"),
)
WORKSTATION_OS: Final = (
    ("Microsoft Windows 11 Pro", "10.0.22631"),
    ("Microsoft Windows 10 Pro", "10.0.19045"),
    ("Microsoft Windows 10 Enterprise", "10.0.19044"),
    ("macOS Sonoma", "14.6.1"),
)
AGENT_VERSIONS: Final = ("10_13_8", "10_13_7", "10_12_5", "10_11_2")
AGENT_MODES: Final = ("1", "2", "0")
MOB_PLUGINS: Final = (
    "FILE_SYSTEM",
    "SYSTEM_STATE",
    "EXCHANGE",
    "NETWORK_SHARES",
    "VMWARE",
    "MSSQL",
    "SHAREPOINT",
    "ORACLE",
)
#: Plugin names seen outside the documented list; the vocabulary is open.
UNDOCUMENTED_PLUGINS: Final = ("HYPER_V", "MYSQL")
MOB_STATUSES: Final = (
    "COMPLETED",
    "INTERRUPTED",
    "COMPLETED_WITH_ERRORS",
    "FAILED",
    "NOT_STARTED",
    "CANCELED",
)
#: Statuses outside the documented list, emitted rarely.
UNDOCUMENTED_STATUSES: Final = ("IN_PROGRESS", "OVER_QUOTA")
FAILURE_STATUSES: Final = ("FAILED", "NOT_STARTED", "INTERRUPTED", "CANCELED")
PATCH_STATUS_LABELS: Final = {
    1: "Missing",
    2: "Pending",
    4: "Queued",
    8: "Installed",
    16: "Failed",
    64: "Reboot Required",
}
PATCH_POLICY_LABELS: Final = {
    1: "Ignore",
    65: "Ignore",
    2: "Approve",
    66: "Approve",
    4: "Do Nothing",
    68: "Do Nothing",
}
SEVERITY_LABELS: Final = ("Unspecified", "Low", "Moderate", "Important", "Critical")
PATCH_PRODUCTS: Final = (
    ("Windows 11", "{month} Cumulative Update for Windows 11 Version 24H2 (KB{kb})"),
    ("Windows 10", "{month} Security Update for Windows 10 <x64> (KB{kb})"),
    ("Windows Server 2019", "{month} Cumulative Update for Windows Server 2019 (KB{kb})"),
    ("Office 2016", "Mise à jour de sécurité pour Microsoft Office 2016 (KB{kb}) Édition 64 bits"),
    ("Visual C++", "Microsoft Visual C++ 2015-2022 Redistributable & Runtime (KB{kb})"),
    (".NET Framework", "Sicherheitsupdate für .NET Framework 4.8 für Windows (KB{kb}) - Größe"),
    ("Defender", "Security Intelligence Update for Microsoft Defender (KB{kb})"),
    ("Edge", "Microsoft Edge-Update für Geräte (KB{kb})"),
)
