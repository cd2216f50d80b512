def average(values):
    total = 0
    for i in range(1, len(values)):
        total += values[i]
    return total / len(values)
