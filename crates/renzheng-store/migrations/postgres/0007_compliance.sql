-- Compliance (issue 23). Every person's face is processed under a recorded legal basis:
-- its kind (consent, law or contract), the reference where the consent or contract is
-- kept or the statute, a guardian's consent for a child under 14, the purpose, when and
-- by whom it was recorded. Persons enrolled before this release have none until an
-- operator records one (`renzheng registry basis`).
ALTER TABLE persons ADD COLUMN basis TEXT CHECK (basis IN ('consent', 'law', 'contract'));
ALTER TABLE persons ADD COLUMN basis_ref TEXT;
ALTER TABLE persons ADD COLUMN guardian_ref TEXT;
ALTER TABLE persons ADD COLUMN purpose TEXT;
ALTER TABLE persons ADD COLUMN basis_at BIGINT;
ALTER TABLE persons ADD COLUMN basis_actor TEXT;

-- Dates the registry reached a line it must report (the 100,000-person filing line of
-- order No. 19 under `filing:<line>`): set when first seen reached, cleared when the
-- registry falls back under it (the line counts what is stored, not what ever was).
CREATE TABLE compliance_marks (
    name        TEXT    PRIMARY KEY,
    at          BIGINT  NOT NULL
);
