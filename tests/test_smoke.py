def test_org_tree_fixture_paths_nest(community):
    assert community.village.path.startswith(community.township.path)
    assert not community.other_village.path.startswith(community.township.path)
