"""Viral genome data (reference recipe 003): vendored viral and bacterial
records, exact coding-integrity labels of mutated windows
(coding-intact vs loss-of-function or dinucleotide-shuffled), viral vs
bacterial fragments, and a reader for a user's FASTA + labels."""
