use crate::app_support::*;
