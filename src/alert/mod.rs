//! Live Art. 33 detection and alert delivery (issue 4).
