//! Observation CSV and gateway log import (issues 4 and 6).
