{#-
    Every row satisfies `expression`, a boolean SQL expression over the model's columns.
    At column level the expression may use the column by name; it is not substituted.
-#}
{% test expression_is_true(model, expression, column_name=none) %}

select *
from {{ model }}
where not ({{ expression }})

{% endtest %}
