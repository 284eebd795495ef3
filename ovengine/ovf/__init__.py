"""OVF as oVirt writes it into OVAs: a model, a writer and a reader."""
