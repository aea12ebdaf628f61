"""Google Cloud region codes -> display names (FOCUS RegionName), as Google's location list names them.

A code not listed keeps its code as its name, so RegionName is set exactly when RegionId is.
"""

from __future__ import annotations

GCP_REGION_NAMES: dict[str, str] = {
    "us-central1": "Iowa", "us-east1": "South Carolina", "us-east4": "Northern Virginia", "us-east5": "Columbus",
    "us-south1": "Dallas", "us-west1": "Oregon", "us-west2": "Los Angeles", "us-west3": "Salt Lake City",
    "us-west4": "Las Vegas", "northamerica-northeast1": "Montreal", "northamerica-northeast2": "Toronto",
    "southamerica-east1": "Sao Paulo", "southamerica-west1": "Santiago", "europe-central2": "Warsaw",
    "europe-north1": "Finland", "europe-southwest1": "Madrid", "europe-west1": "Belgium", "europe-west2": "London",
    "europe-west3": "Frankfurt", "europe-west4": "Netherlands", "europe-west6": "Zurich", "europe-west8": "Milan",
    "europe-west9": "Paris", "europe-west10": "Berlin", "europe-west12": "Turin", "me-central1": "Doha",
    "me-central2": "Dammam", "me-west1": "Tel Aviv", "asia-east1": "Taiwan", "asia-east2": "Hong Kong",
    "asia-northeast1": "Tokyo", "asia-northeast2": "Osaka", "asia-northeast3": "Seoul", "asia-south1": "Mumbai",
    "asia-south2": "Delhi", "asia-southeast1": "Singapore", "asia-southeast2": "Jakarta", "australia-southeast1": "Sydney",
    "australia-southeast2": "Melbourne", "africa-south1": "Johannesburg",
    "us": "United States (multi-region)", "eu": "European Union (multi-region)", "asia": "Asia (multi-region)",
}


def region_name(code: str | None) -> str | None:
    if not code:
        return None
    return GCP_REGION_NAMES.get(code.lower(), code)
