"""The offline essay grader: text features, a prior, a ridge model learnt from exemplars, feedback.

features   what one essay measures (length, vocabulary, spelling, sentences, cohesion …)
prior      feature scales and each writing aspect's weights, before any exemplar
model      ridge regression shrunk toward the prior; cross-validated predictions
similarity kernel regression on the words of the exemplars
plan       a rubric read once: criteria, aspects, levels, key terms
grader     fitting (cached per exemplar set) and scoring one essay
levels     criterion scores on the rubric's levels, adding up to the total
feedback   notes per criterion and overall, quoting the essay's sentences
"""
