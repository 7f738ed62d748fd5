"""One trial: values -> settings -> model -> fit -> metrics, its photos and its figures."""
