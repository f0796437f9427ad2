"""Digital contact directory: organisations, units, contact routes, opening hours, FHIR mCSD."""
