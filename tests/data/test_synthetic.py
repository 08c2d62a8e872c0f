import pandas as pd

from reason4rec.data.synthetic import MUSIC_ASPECTS, generate_review_world


def test_fixed_seed_gives_identical_tables(smoke_world):
    pd.testing.assert_frame_equal(generate_review_world(smoke_world), generate_review_world(smoke_world))
    other = generate_review_world({**smoke_world, "seed": smoke_world["seed"] + 1})
    assert not other["review"].equals(generate_review_world(smoke_world)["review"])


def test_ratings_are_skewed_and_driven_by_aspects(smoke_world):
    world = generate_review_world({**smoke_world, "n_users": 200})
    shares = world["rating"].value_counts(normalize=True)
    assert shares.get(4.0, 0) + shares.get(5.0, 0) > 0.6
    assert world["rating"].between(1, 5).all()
    # A rating with more negative drivers is lower on average.
    negatives = world["true_negative_aspects"].map(len)
    assert world.loc[negatives > 0, "rating"].mean() < world.loc[negatives == 0, "rating"].mean()


def test_reviews_verbalise_their_driving_aspects_among_noise(smoke_world):
    world = generate_review_world(smoke_world)
    for row in world.head(100).itertuples():
        for aspect in row.true_positive_aspects:
            assert any(phrase.lower() in row.review.lower() for phrase in MUSIC_ASPECTS[aspect][0])
        for aspect in row.true_negative_aspects:
            assert any(phrase.lower() in row.review.lower() for phrase in MUSIC_ASPECTS[aspect][1])
    assert world["review"].nunique() > 0.5 * len(world)
    assert world["timestamp"].is_monotonic_increasing
